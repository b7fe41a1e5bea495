//! Tests of the deployment files (`k8s/`, `Dockerfile`, `docker-compose.yml`):
//! see `tests/k8s.rs`. The crate has no code of its own.
