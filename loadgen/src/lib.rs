//! loadgen library (skeleton; filled in by its issue).
