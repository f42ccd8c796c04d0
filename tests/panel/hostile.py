"""A message body that tries every way to run script or load remote content."""

from __future__ import annotations

# A 1x1 GIF: a data: image the frame's policy allows, so its onload handler
# would run if handlers survived sanitising.
TINY_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///ywAAAAAAQABAAACAUwAOw=="


def hostile_html(base: str) -> str:
    """Return HTML whose every active part, if it ran, requests ``base``."""
    return f"""<html><head>
<link rel="stylesheet" href="{base}/link.css">
<style>@import url({base}/import.css); body {{ background: url({base}/style-bg.png) }}</style>
<meta http-equiv="refresh" content="0;url={base}/refresh">
<script>window.__pwned = 1; fetch("{base}/script-fetch");</script>
</head>
<body onload="window.__pwned = 2; fetch('{base}/body-onload')">
<p id="greeting">Hello <b>reader</b>, this is the visible text.</p>
<img src="{base}/remote.png" alt="remote image">
<img srcset="{base}/srcset.png 2x" alt="srcset image">
<img src="{TINY_GIF}" onload="window.__pwned = 3; fetch('{base}/img-onload')" alt="inline">
<img src="x" onerror="window.__pwned = 4; fetch('{base}/img-onerror')" alt="broken">
<div style="background-image: url({base}/inline-style.png)">styled block</div>
<a href="javascript:fetch('{base}/javascript-link')">a link</a>
<svg onload="fetch('{base}/svg-onload')"><image href="{base}/svg-image.png"/></svg>
<iframe src="{base}/iframe"></iframe>
<object data="{base}/object"></object>
<video poster="{base}/poster.png"></video>
<form action="{base}/form"><input autofocus onfocus="fetch('{base}/onfocus')"></form>
<table background="{base}/table-bg.png"><tr><td>cell</td></tr></table>
<script src="{base}/external.js"></script>
</body></html>"""
