"""Certificates, keys and kubeconfigs for the local control plane, made with the openssl CLI.

Layout under the PKI directory (all PEM, EC P-256 keys):
``ca.crt``/``ca.key`` (the cluster CA, also the client CA of the apiserver),
``apiserver.crt``/``.key`` (serving, SANs 127.0.0.1, localhost, kubernetes.default...),
``sa.key``/``sa.pub`` (service-account token signing), and one client pair per user in
:data:`CLIENT_IDENTITIES`. :func:`ensure_serving_pki` makes a separate CA and serving pair for a
webhook server (Kueue's, see kueue.py).
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: client certificate identities: file stem -> (common name, organisation).
#: Every component is in system:masters: the controllers run without per-controller service
#: account credentials, and KWOK patches pod and node status.
CLIENT_IDENTITIES: dict[str, tuple[str, str]] = {
    "admin": ("kubernetes-admin", "system:masters"),
    "kube-controller-manager": ("system:kube-controller-manager", "system:masters"),
    "kube-scheduler": ("system:kube-scheduler", "system:masters"),
    "kwok": ("system:kwok-controller", "system:masters"),
}

#: SANs of the apiserver serving certificate; 10.96.0.1 is the `kubernetes` Service IP.
APISERVER_SANS = (
    "IP:127.0.0.1",
    "IP:10.96.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)

_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = {sans}
[v3_client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
"""

_DAYS = "3650"


class PkiError(RuntimeError):
    """openssl failed; the message holds its stderr."""


@dataclass(frozen=True)
class Pki:
    """Paths of the generated material (see the module docstring)."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        """The CA certificate."""
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        """The CA private key."""
        return self.dir / "ca.key"

    @property
    def sa_key(self) -> Path:
        """The service-account signing key (private)."""
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        """The service-account verification key (public)."""
        return self.dir / "sa.pub"

    def cert(self, stem: str) -> Path:
        """The certificate ``<stem>.crt`` (``apiserver`` or a key of CLIENT_IDENTITIES)."""
        return self.dir / f"{stem}.crt"

    def key(self, stem: str) -> Path:
        """The private key ``<stem>.key``."""
        return self.dir / f"{stem}.key"

    def complete(self) -> bool:
        """Return True when every file exists (a previous run finished generating)."""
        stems = ["ca", "sa", "apiserver", *CLIENT_IDENTITIES]
        files = [self.sa_pub] + [self.dir / f"{s}.key" for s in stems]
        files += [self.dir / f"{s}.crt" for s in stems if s != "sa"]
        return all(f.is_file() for f in files)


def _openssl(*args: str, openssl: str) -> None:
    result = subprocess.run([openssl, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PkiError(f"openssl {' '.join(args[:2])} failed: {result.stderr.strip()}")


def _new_key(path: Path, openssl: str) -> None:
    _openssl(
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        str(path),
        openssl=openssl,
    )
    path.chmod(0o600)


def _signed_cert(pki: Pki, stem: str, subject: str, extensions: str, openssl: str) -> None:
    _new_key(pki.key(stem), openssl)
    csr = pki.dir / f"{stem}.csr"
    config = str(pki.dir / "openssl.cnf")
    _openssl(
        "req", "-new", "-key", str(pki.key(stem)), "-subj", subject, "-config", config,
        "-out", str(csr), openssl=openssl,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(pki.ca_cert), "-CAkey", str(pki.ca_key),
        "-set_serial", "0x" + secrets.token_hex(16), "-days", _DAYS, "-sha256",
        "-extfile", config, "-extensions", extensions, "-out", str(pki.cert(stem)),
        openssl=openssl,
    )  # fmt: skip
    csr.unlink()


def _new_ca(pki: Pki, subject: str, openssl: str) -> None:
    _new_key(pki.ca_key, openssl)
    _openssl(
        "req", "-x509", "-new", "-key", str(pki.ca_key), "-subj", subject,
        "-config", str(pki.dir / "openssl.cnf"), "-extensions", "v3_ca", "-days", _DAYS,
        "-sha256", "-out", str(pki.ca_cert), openssl=openssl,
    )  # fmt: skip


def _prepare(directory: Path, sans: Sequence[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    (directory / "openssl.cnf").write_text(
        _OPENSSL_CONFIG.format(sans=",".join(sans)), encoding="utf-8"
    )


def ensure_pki(directory: Path, *, openssl: str = "openssl") -> Pki:
    """Create the CA, serving, client and service-account keys in ``directory`` if missing.

    Reuses a complete existing set; otherwise regenerates everything (about 0.2 s).
    Raises PkiError when openssl fails and FileNotFoundError when it is not installed.
    """
    pki = Pki(directory)
    if pki.complete():
        return pki
    _prepare(directory, APISERVER_SANS)
    _new_ca(pki, "/CN=backfill-devcluster-ca", openssl)
    _signed_cert(pki, "apiserver", "/CN=kube-apiserver", "v3_server", openssl)
    for stem, (common_name, organisation) in CLIENT_IDENTITIES.items():
        _signed_cert(pki, stem, f"/O={organisation}/CN={common_name}", "v3_client", openssl)
    _new_key(pki.sa_key, openssl)
    _openssl("pkey", "-in", str(pki.sa_key), "-pubout", "-out", str(pki.sa_pub), openssl=openssl)
    return pki


def ensure_serving_pki(
    directory: Path,
    *,
    common_name: str,
    sans: Sequence[str] = ("IP:127.0.0.1", "DNS:localhost"),
    openssl: str = "openssl",
) -> Pki:
    """Create a CA of its own (``ca.crt``/``ca.key``) and a serving pair signed by it,
    ``tls.crt``/``tls.key`` (the file names controller-runtime webhook servers read), in
    ``directory``, unless all four exist. ``sans`` are openssl subjectAltName entries; give
    ``ca.crt`` to the apiserver as the webhook caBundle. Raises PkiError like ensure_pki.
    """
    pki = Pki(directory)
    if all(f.is_file() for f in (pki.ca_cert, pki.ca_key, pki.cert("tls"), pki.key("tls"))):
        return pki
    _prepare(directory, sans)
    _new_ca(pki, f"/CN={common_name}-ca", openssl)
    _signed_cert(pki, "tls", f"/CN={common_name}", "v3_server", openssl)
    return pki


def write_kubeconfig(path: Path, *, server: str, pki: Pki, user: str, name: str) -> Path:
    """Write a self-contained kubeconfig (certificates embedded) for client ``user``.

    ``user`` is a key of CLIENT_IDENTITIES; ``name`` names the cluster, user and context.
    The file is JSON, which every kubeconfig reader accepts as YAML. Returns ``path``.
    """

    def b64(file: Path) -> str:
        return base64.b64encode(file.read_bytes()).decode("ascii")

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {"server": server, "certificate-authority-data": b64(pki.ca_cert)},
            }
        ],
        "users": [
            {
                "name": f"{name}-{user}",
                "user": {
                    "client-certificate-data": b64(pki.cert(user)),
                    "client-key-data": b64(pki.key(user)),
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-{user}"}}],
        "current-context": name,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)
    return path
