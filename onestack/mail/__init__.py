"""Mail: SMTP in and out, local delivery, and the IMAP server."""
