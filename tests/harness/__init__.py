"""Test harnesses: the real dynamic-provider host driven over gRPC, and throwaway PostgreSQL clusters and OpenBao
servers; hosts and servers die with the test process that started them (:mod:`tests.harness.lifeline`)."""
