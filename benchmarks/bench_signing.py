"""Sign/verify µs per op of the gateway against raw python-xmlsec (see signing/bench.py)."""

from signing.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
