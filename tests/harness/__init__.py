"""Test harnesses: the real dynamic-provider host driven over gRPC, and a throwaway PostgreSQL cluster."""
