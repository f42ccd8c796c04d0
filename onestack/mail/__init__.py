<<<<<<< HEAD
"""Mail: SMTP delivery, the outbound queue and the IMAP server."""
=======
"""Mail: SMTP in and out, local delivery, and the IMAP server."""
>>>>>>> imap
