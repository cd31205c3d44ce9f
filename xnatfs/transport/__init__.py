"""HTTP transport (L1): credentials, the requests session, status → error mapping. The only package that imports requests."""
