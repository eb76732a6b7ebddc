"""The built-in profiles: ``rest-intermediary`` (rest.py); see :data:`conformance.registry.PROFILE_MODULES`."""
