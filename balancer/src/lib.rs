//! balancer library (skeleton; filled in by its issue).
