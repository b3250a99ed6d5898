// swift-tools-version:5.9
//
// The GroupScope Swift package: the uniffi-generated bindings of libgroupscope_ffi plus a
// hand-written idiomatic layer.
//
// `scripts/test-swift.sh` generates `Sources/GroupScopeFFI/` (C header and module map) and
// `Sources/GroupScope/Generated/` from the built library before it builds this package; both
// are git-ignored. `GROUPSCOPE_LIB_DIR` is the folder that contains libgroupscope_ffi for the
// linker, `../../target/debug` by default. Apps on Apple platforms link an XCFramework built
// from the same library instead; see the README.
import PackageDescription

let libraryDirectory = Context.environment["GROUPSCOPE_LIB_DIR"] ?? "../../target/debug"

let package = Package(
    name: "GroupScope",
    products: [
        .library(name: "GroupScope", targets: ["GroupScope"]),
    ],
    targets: [
        .systemLibrary(name: "GroupScopeFFI", path: "Sources/GroupScopeFFI"),
        .target(
            name: "GroupScope",
            dependencies: ["GroupScopeFFI"],
            path: "Sources/GroupScope",
            linkerSettings: [
                .linkedLibrary("groupscope_ffi"),
                .unsafeFlags(["-L", libraryDirectory]),
            ]
        ),
        .testTarget(
            name: "GroupScopeTests",
            dependencies: ["GroupScope"],
            path: "Tests/GroupScopeTests"
        ),
    ]
)
