//! The `uniffi-bindgen` command, pinned to the uniffi version of `groupscope-ffi`.
//!
//! Generated Kotlin and Swift check the scaffolding's contract version and per-function
//! checksums when they load the library, so they must come from this exact version.
//! Run it from the workspace root in library mode:
//!
//! ```text
//! cargo run -p uniffi-bindgen -- generate --library target/debug/libgroupscope_ffi.so \
//!     --language kotlin --out-dir build/bindings/kotlin --no-format
//! ```

fn main() {
    uniffi::uniffi_bindgen_main()
}
