"""Pluggable adapters per ministry and ASEAN partner (VNSW SOAP, REST/JSON, AS4, file drop)."""
