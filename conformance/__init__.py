"""The onboarding conformance kit for ministries and partners."""
