"""Throwaway GSI material for a gsiftp test: a CA, host and user certificates, a user proxy.

Made with ``cryptography`` (the proxy too: an RFC 3820 proxy certificate is
a certificate the user's own certificate signs, its subject the user's plus
one CN, with the critical proxyCertInfo extension), laid out the way Globus
reads them: the CA under its subject hash with a signing policy in
``X509_CERT_DIR``, and a grid-mapfile mapping the user to a local account.
"""

from __future__ import annotations

import datetime
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

PROXY_CERT_INFO = ObjectIdentifier("1.3.6.1.5.5.7.1.14")
# ProxyCertInfo ::= SEQUENCE { proxyPolicy SEQUENCE { policyLanguage id-ppl-inheritAll } }
INHERIT_ALL = bytes.fromhex("300c300a06082b06010505071501")
CA_SUBJECT = "/DC=test/CN=davgate test CA"
USER_SUBJECT = "/DC=test/CN=davgate test user"


@dataclass(frozen=True)
class Gsi:
    folder: Path
    certificates: Path  # X509_CERT_DIR
    host_cert: Path
    host_key: Path
    gridmap: Path
    proxy: Path  # the user's proxy: certificate, key, user certificate

    def server_env(self) -> dict[str, str]:
        return {
            "X509_CERT_DIR": str(self.certificates),
            "X509_USER_CERT": str(self.host_cert),
            "X509_USER_KEY": str(self.host_key),
            "GRIDMAP": str(self.gridmap),
        }


def name(*parts: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in parts])


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def issue(
    subject: x509.Name, key: rsa.RSAPrivateKey, issuer: x509.Name, signer: rsa.RSAPrivateKey, extensions: list
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
    builder = builder.serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
    builder = builder.not_valid_after(now + datetime.timedelta(hours=12))
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signer, hashes.SHA256())


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def write_private(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def subject_hash(cert_file: Path) -> str:
    done = subprocess.run(
        ["openssl", "x509", "-in", str(cert_file), "-noout", "-subject_hash"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def make_gsi(folder: Path, local_user: str) -> Gsi:
    """CA, host (CN=localhost) and user certificates, the user's proxy and a grid-mapfile, in ``folder``."""
    certificates = folder / "certificates"
    certificates.mkdir(parents=True)
    dc = (NameOID.DOMAIN_COMPONENT, "test")
    ca_key, host_key, user_key, proxy_key = new_key(), new_key(), new_key(), new_key()
    ca_name = name(dc, (NameOID.COMMON_NAME, "davgate test CA"))
    ca = issue(ca_name, ca_key, ca_name, ca_key, [
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (x509.KeyUsage(False, False, False, False, False, True, True, False, False), True),
    ])  # fmt: skip
    (folder / "ca.pem").write_bytes(pem(ca))
    digest = subject_hash(folder / "ca.pem")
    (certificates / f"{digest}.0").write_bytes(pem(ca))
    (certificates / f"{digest}.signing_policy").write_text(
        f"access_id_CA X509 '{CA_SUBJECT}'\npos_rights globus CA:sign\ncond_subjects globus '\"/DC=test/*\"'\n"
    )
    host = issue(name(dc, (NameOID.COMMON_NAME, "localhost")), host_key, ca_name, ca_key, [
        (x509.SubjectAlternativeName([x509.DNSName("localhost")]), False),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), False),
    ])  # fmt: skip
    (folder / "host.pem").write_bytes(pem(host))
    write_private(folder / "host.key", key_pem(host_key))
    user_name = name(dc, (NameOID.COMMON_NAME, "davgate test user"))
    user = issue(user_name, user_key, ca_name, ca_key, [
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
        (x509.KeyUsage(True, False, True, False, False, False, False, False, False), True),
    ])  # fmt: skip
    proxy_name = x509.Name(
        [*user_name, x509.NameAttribute(NameOID.COMMON_NAME, str(x509.random_serial_number() % 10**9))]
    )
    proxy = issue(proxy_name, proxy_key, user_name, user_key, [
        (x509.UnrecognizedExtension(PROXY_CERT_INFO, INHERIT_ALL), True),
        (x509.KeyUsage(True, False, True, False, False, False, False, False, False), True),
    ])  # fmt: skip
    write_private(folder / "proxy.pem", pem(proxy) + key_pem(proxy_key) + pem(user))
    (folder / "gridmap").write_text(f'"{USER_SUBJECT}" {local_user}\n')
    return Gsi(folder, certificates, folder / "host.pem", folder / "host.key", folder / "gridmap", folder / "proxy.pem")
