"""IMAP4rev1 server (RFC 3501) on asyncio, over the shared mail tables."""
