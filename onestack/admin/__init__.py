"""The admin side: REST API, WebSocket feed and web panel on one port."""
