"""XML signatures under a trust policy: sign, verify, trust stores, certificate validation, the hardened parser."""

from signing._compat import check_libxml2_versions

check_libxml2_versions()
