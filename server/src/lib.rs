//! groupscope-server (under construction).
