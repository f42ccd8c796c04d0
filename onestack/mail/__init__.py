"""Mail: SMTP delivery, the outbound queue and the IMAP server."""
