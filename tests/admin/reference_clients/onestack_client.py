# Reproduces the Python client example of the OneStack REST API reference
# (requests) as written there.
import requests
from requests.auth import HTTPBasicAuth

class OneStackClient:
    def __init__(self, base_url, username, password):
        self.base_url = base_url
        self.auth = HTTPBasicAuth(username, password)

    def request(self, endpoint, method='GET', json=None):
        url = f"{self.base_url}{endpoint}"
        response = requests.request(
            method, url,
            auth=self.auth,
            json=json,
            headers={'Content-Type': 'application/json'}
        )
        response.raise_for_status()
        return response.json()

    def list_virtual_hosts(self):
        return self.request('/api/vhosts')

    def create_virtual_host(self, domain, **kwargs):
        data = {'domain': domain, **kwargs}
        return self.request('/api/vhosts', 'POST', data)

    def create_mailbox(self, email, **kwargs):
        data = {'email': email, **kwargs}
        return self.request('/api/mailboxes', 'POST', data)

    def send_email(self, from_addr, to_addr, subject, body):
        data = {
            'from': from_addr,
            'to': to_addr,
            'subject': subject,
            'body': body
        }
        return self.request('/api/send-email', 'POST', data)
