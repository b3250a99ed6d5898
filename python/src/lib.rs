//! Python binding (under construction).
