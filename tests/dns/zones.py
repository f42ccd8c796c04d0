"""Zone files shared by the dns tests."""

EXAMPLE_ZONE = """\
; A zone in the style of a small hosting customer's, with every type served.
$ORIGIN example.com.
$TTL 1h
@   IN  SOA ns1.example.com. hostmaster.example.com. (
        2024050101 ; serial
        3h         ; refresh
        15m        ; retry
        2w         ; expire
        5m )       ; negative caching TTL
    IN  NS      ns1
    IN  NS      ns2.example.net.
    IN  MX      10 mail
    IN  MX      20 mail.backup.example.net.
    IN  A       192.0.2.10
    IN  AAAA    2001:db8::10
    IN  TXT     "v=spf1 mx -all"
    IN  CAA     0 issue "letsencrypt.org"
ns1 IN  A       192.0.2.53
mail    300 IN A 192.0.2.25
www     IN  CNAME   @
chain   IN  CNAME   www
outside IN  CNAME   www.example.org.
_sip._tcp   IN SRV 10 60 5060 sip
sip     IN  A       192.0.2.60
10      IN  PTR     host10.example.com.
dkim._domainkey IN TXT ( "v=DKIM1; k=rsa; "
        "p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx" )
*.apps  IN  A       192.0.2.80
a.b.deep IN A 192.0.2.90
sub     IN  NS      ns.sub
ns.sub  IN  A       192.0.2.99
big     IN  TXT     "{big}"
"""


def example_zone() -> str:
    # Enough 200-byte strings that the TXT answer exceeds 1232 bytes.
    big = '" "'.join(["x" * 200] * 8)
    return EXAMPLE_ZONE.replace("{big}", big)
