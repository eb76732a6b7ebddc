"""Sign/verify µs per op of the gateway against raw python-xmlsec (see signing/dev/bench.py)."""

from signing.dev.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
