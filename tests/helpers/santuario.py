"""Apache Santuario (Java, Debian libxml-security-java) as an independent WS-Security implementation.

``santuario/SwaCheck.java`` beside this file is compiled once into a temporary folder; :class:`Santuario` runs
it to transform an attachment, to verify an envelope's signature over its ``cid:`` attachments, or to sign an
envelope template. scripts/test installs the package and a JDK.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SOURCE = Path(__file__).resolve().parent / "santuario" / "SwaCheck.java"
JARS = tuple(
    Path("/usr/share/java") / name for name in ("xmlsec.jar", "commons-codec.jar", "slf4j-api.jar", "slf4j-nop.jar")
)
"""Santuario and what it needs at run time (all installed with libxml-security-java)."""
INSTALL_HINT = "apt-get install libxml-security-java default-jdk-headless (scripts/test does it)"


@dataclass(frozen=True)
class Verdict:
    """What Santuario said of a signature: valid or not, and each reference's URI with ``ok`` or
    ``digest-mismatch``."""

    valid: bool
    references: dict[str, str]


class Santuario:
    """SwaCheck compiled in ``classes``; every call writes its inputs to ``work``."""

    def __init__(self, classes: Path, work: Path) -> None:
        self._classpath = ":".join([str(classes), *map(str, JARS)])
        self._work = work
        self._calls = 0

    @classmethod
    def compile(cls, folder: Path) -> Santuario:
        javac = shutil.which("javac")
        missing = [str(j) for j in JARS if not j.is_file()]
        assert javac is not None and not missing, f"missing {missing or 'javac'}: {INSTALL_HINT}"
        classes = folder / "classes"
        classes.mkdir()
        classpath = ":".join(map(str, JARS))
        subprocess.run(
            [javac, "-d", str(classes), "-cp", classpath, str(SOURCE)], check=True, capture_output=True, timeout=120
        )
        work = folder / "work"
        work.mkdir()
        return cls(classes, work)

    def _folder(self) -> Path:
        self._calls += 1
        folder = self._work / f"call-{self._calls}"
        folder.mkdir()
        return folder

    def _attachments(self, folder: Path, attachments: Mapping[str, tuple[bytes, str]]) -> list[str]:
        args: list[str] = []
        for number, (cid, (content, mime_type)) in enumerate(attachments.items()):
            path = folder / f"attachment-{number}"
            path.write_bytes(content)
            args += [cid, mime_type, str(path)]
        return args

    def _run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["java", "-cp", self._classpath, "SwaCheck", *args], capture_output=True, timeout=120)

    def transform(self, content: bytes, mime_type: str) -> bytes:
        """The octets Santuario's Attachment-Content-Signature-Transform gives for ``content`` of ``mime_type``."""
        path = self._folder() / "content"
        path.write_bytes(content)
        done = self._run("transform", mime_type, str(path))
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        return done.stdout

    def verify(
        self, envelope: bytes, certificate: x509.Certificate, attachments: Mapping[str, tuple[bytes, str]]
    ) -> Verdict:
        """Santuario's verdict on the signature of ``envelope`` (the SOAP part) for the signer's ``certificate``,
        with the attachments (Content-ID -> content, the MIME type the receiver sees)."""
        folder = self._folder()
        (folder / "envelope.xml").write_bytes(envelope)
        (folder / "signer.der").write_bytes(certificate.public_bytes(serialization.Encoding.DER))
        done = self._run(
            "verify",
            str(folder / "envelope.xml"),
            str(folder / "signer.der"),
            *self._attachments(folder, attachments),
        )
        lines = done.stdout.decode().split("\n")
        assert done.returncode in (0, 1) and lines[0] in ("VALID", "INVALID"), done.stderr.decode(errors="replace")
        references = dict(line.rsplit(" ", 1) for line in lines[1:] if line)
        return Verdict(lines[0] == "VALID", references)

    def sign(self, template: bytes, key: rsa.RSAPrivateKey, attachments: Mapping[str, tuple[bytes, str]]) -> bytes:
        """``template`` (an envelope with eb:Messaging, soap:Body with wsu:Ids and a wsse:Security holding the
        signer's BinarySecurityToken) signed by Santuario with ``key``: RSA-SHA256, references to eb:Messaging,
        soap:Body and each attachment."""
        folder = self._folder()
        (folder / "template.xml").write_bytes(template)
        (folder / "key.pk8").write_bytes(
            key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        done = self._run(
            "sign",
            str(folder / "template.xml"),
            str(folder / "key.pk8"),
            str(folder / "signed.xml"),
            *self._attachments(folder, attachments),
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        return (folder / "signed.xml").read_bytes()
