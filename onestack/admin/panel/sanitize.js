// Make a message's HTML safe to show: DOMPurify removes scripts, event
// handlers and active elements, and this module also drops every reference
// to a remote resource. The result goes into a sandboxed frame (no
// allow-scripts, opaque origin) whose own CSP allows images from data: only,
// so anything the sanitiser missed still cannot run or load.

import DOMPurify from "./vendor/purify.es.mjs";

const URL_ATTRIBUTES = ["src", "srcset", "background", "poster", "lowsrc", "dynsrc", "xlink:href"];

// NOTE: a srcdoc frame also inherits the panel's own policy, whose style-src
// 'self' blocks the message's style attributes, so HTML mail shows unstyled.
export const FRAME_POLICY =
  "default-src 'none'; img-src data:; style-src 'unsafe-inline'; " +
  "font-src 'none'; media-src 'none'; form-action 'none'; base-uri 'none'";

function isInlineImage(value) {
  return /^\s*data:image\/(png|gif|jpe?g|webp|bmp);/i.test(value);
}

export function sanitizeMessageHtml(dirty) {
  let blocked = 0;
  const purifier = DOMPurify(window);
  purifier.addHook("afterSanitizeAttributes", (node) => {
    for (const name of URL_ATTRIBUTES) {
      const value = node.getAttribute(name);
      if (value !== null && !isInlineImage(value)) {
        node.removeAttribute(name);
        blocked += 1;
      }
    }
    const style = node.getAttribute("style");
    if (style !== null && /url\s*\(|@import|expression\s*\(/i.test(style)) {
      node.removeAttribute("style");
      blocked += 1;
    }
    if (node.tagName === "A" && node.hasAttribute("href")) {
      // Links stay readable but inert: the sandbox allows no navigation.
      node.setAttribute("title", node.getAttribute("href"));
      node.removeAttribute("href");
    }
  });
  const clean = purifier.sanitize(String(dirty || ""), {
    WHOLE_DOCUMENT: false,
    FORBID_TAGS: ["style", "link", "meta", "base", "form", "input", "button", "textarea", "select",
      "iframe", "frame", "object", "embed", "audio", "video", "source", "track", "svg", "math"],
    FORBID_ATTR: ["ping", "action", "formaction"],
    ALLOW_DATA_ATTR: false,
  });
  return { html: clean, blocked };
}

// The frame's whole document; the CSP meta element comes first.
export function frameDocument(cleanHtml) {
  return (
    "<!doctype html><html><head>" +
    `<meta http-equiv="Content-Security-Policy" content="${FRAME_POLICY}">` +
    '<meta charset="utf-8"><meta name="referrer" content="no-referrer">' +
    "</head><body>" +
    cleanHtml +
    "</body></html>"
  );
}
