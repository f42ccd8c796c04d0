<?php
// Reproduces the PHP client example of the OneStack REST API reference
// (curl) as written there.
class OneStackClient {
    private $baseUrl;
    private $auth;

    public function __construct($baseUrl, $username, $password) {
        $this->baseUrl = $baseUrl;
        $this->auth = base64_encode("$username:$password");
    }

    private function request($endpoint, $method = 'GET', $data = null) {
        $url = $this->baseUrl . $endpoint;
        $headers = [
            "Authorization: Basic {$this->auth}",
            'Content-Type: application/json'
        ];

        $ch = curl_init($url);
        curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
        curl_setopt($ch, CURLOPT_HTTPHEADER, $headers);
        curl_setopt($ch, CURLOPT_CUSTOMREQUEST, $method);

        if ($data !== null) {
            curl_setopt($ch, CURLOPT_POSTFIELDS, json_encode($data));
        }

        $response = curl_exec($ch);
        $httpCode = curl_getinfo($ch, CURLINFO_HTTP_CODE);
        curl_close($ch);

        if ($httpCode >= 400) {
            throw new Exception("API Error: $response");
        }

        return json_decode($response, true);
    }

    public function listVirtualHosts() {
        return $this->request('/api/vhosts');
    }

    public function createVirtualHost($domain, $options = []) {
        $data = array_merge(['domain' => $domain], $options);
        return $this->request('/api/vhosts', 'POST', $data);
    }

    public function createMailbox($email, $options = []) {
        $data = array_merge(['email' => $email], $options);
        return $this->request('/api/mailboxes', 'POST', $data);
    }

    public function sendEmail($from, $to, $subject, $body) {
        $data = [
            'from' => $from,
            'to' => $to,
            'subject' => $subject,
            'body' => $body
        ];
        return $this->request('/api/send-email', 'POST', $data);
    }
}
?>
