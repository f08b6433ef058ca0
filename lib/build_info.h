// What this binary was built from. BSATTN_VERSION is the project version (a compile definition);
// build_commit() is the git commit of the source tree at build time (generated at every build by
// cmake/build_commit.cmake; "unknown" outside a git checkout).
#pragma once

namespace bsattn {
const char* build_commit();
}  // namespace bsattn
