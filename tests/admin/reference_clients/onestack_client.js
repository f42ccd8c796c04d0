// Reproduces the JavaScript client example of the OneStack REST API
// reference (fetch, Node 20) as written there. Only the export at the end
// is added, so that the tests can load the class.
class OneStackClient {
  constructor(baseUrl, username, password) {
    this.baseUrl = baseUrl;
    this.auth = Buffer.from(`${username}:${password}`).toString('base64');
  }

  async request(endpoint, options = {}) {
    const response = await fetch(`${this.baseUrl}${endpoint}`, {
      ...options,
      headers: {
        'Authorization': `Basic ${this.auth}`,
        'Content-Type': 'application/json',
        ...options.headers
      }
    });

    if (!response.ok) {
      const error = await response.json();
      throw new Error(error.error);
    }

    return response.json();
  }

  // Virtual Hosts
  async listVirtualHosts() {
    return this.request('/api/vhosts');
  }

  async createVirtualHost(data) {
    return this.request('/api/vhosts', {
      method: 'POST',
      body: JSON.stringify(data)
    });
  }

  // DNS
  async createDNSZone(name, options) {
    return this.request('/api/dns/zones', {
      method: 'POST',
      body: JSON.stringify({ name, options })
    });
  }

  async addDNSRecord(zone, record) {
    return this.request(`/api/dns/zones/${zone}/records`, {
      method: 'POST',
      body: JSON.stringify(record)
    });
  }

  // Email
  async createMailbox(email, options) {
    return this.request('/api/mailboxes', {
      method: 'POST',
      body: JSON.stringify({ email, ...options })
    });
  }

  async sendEmail(from, to, subject, body) {
    return this.request('/api/send-email', {
      method: 'POST',
      body: JSON.stringify({ from, to, subject, body })
    });
  }
}

module.exports = OneStackClient;
