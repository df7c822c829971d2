"""Test harnesses: the real dynamic-provider host driven over gRPC, and throwaway PostgreSQL clusters and OpenBao
servers that die with the test process that started them (:mod:`tests.harness.lifeline`)."""
