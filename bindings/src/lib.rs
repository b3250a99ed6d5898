//! Swift and Kotlin binding (under construction).
