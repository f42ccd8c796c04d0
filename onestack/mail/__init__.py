"""Mail: SMTP in and out, local delivery, the outbound queue and the IMAP server."""
