"""The ssh module: SFTP for site owners, each confined to a vhost's document root."""
