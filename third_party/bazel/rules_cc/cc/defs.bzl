"""Offline stand-in for @rules_cc//cc:defs.bzl.

Bazel 4.2.3's @bazel_tools loads @rules_cc//cc:defs.bzl (tools/cpp, tools/jdk,
...). Upstream rules_cc is not reachable offline, and Debian's bazel-rules-cc
(0.0.4) is incompatible with Bazel 4.2.3, so this file simply re-exports the
native C++/ObjC rules. Nothing in tfrobust builds C++; this exists only so
that @bazel_tools can be loaded.
"""

def cc_binary(**attrs):
    native.cc_binary(**attrs)

def cc_test(**attrs):
    native.cc_test(**attrs)

def cc_library(**attrs):
    native.cc_library(**attrs)

def cc_import(**attrs):
    native.cc_import(**attrs)

def cc_proto_library(**attrs):
    native.cc_proto_library(**attrs)

def cc_toolchain(**attrs):
    native.cc_toolchain(**attrs)

def cc_toolchain_suite(**attrs):
    native.cc_toolchain_suite(**attrs)

def fdo_profile(**attrs):
    native.fdo_profile(**attrs)

def fdo_prefetch_hints(**attrs):
    native.fdo_prefetch_hints(**attrs)

def objc_library(**attrs):
    native.objc_library(**attrs)

def objc_import(**attrs):
    native.objc_import(**attrs)
