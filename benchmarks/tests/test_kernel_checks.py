"""make test-kernels' list of servers and refusals, checked without booting anything: each names one
of echo's variants, and what 6.1 is asked to serve or refuse fits what 6.1 has."""

import unittest

from benchkit import kernel_checks, variants


def requires_after_61(flags):
    """The features past Linux 6.1 that `flags` require, by their words in echo's refusal."""
    needed = []
    if "--incremental-buffers" in flags:
        needed.append("incremental buffer")
    if variants.Variant("flags", flags, "").option("--uring-mode", None) == "bundle":
        needed.append("receive bundles")
    if "--fixed-files" in flags:
        needed.append("release of closed direct descriptors")
    return needed


class KernelChecks(unittest.TestCase):
    def test_the_scarcity_is_echos_sizes_only(self):
        # echo writes the flags (Scarcity in Sources/EchoCLI); they size rings and buffers, nothing else.
        flags = dict(zip(kernel_checks.SCARCE[::2], kernel_checks.SCARCE[1::2]))
        self.assertEqual(flags, {"--ring-entries": "8", "--cq-entries": "8", "--buffer-count": "8",
                                 "--buffer-size": "512"})

    def test_every_server_is_a_variant_with_its_flags(self):
        for name, variant, extra in kernel_checks.SERVERS:
            flags = kernel_checks.server_flags(variant, extra)
            self.assertFalse(variants.lookup(variant).is_peer, name)
            self.assertEqual(flags[:len(variants.echo_flags(variant))], variants.echo_flags(variant), name)
            self.assertEqual(flags[len(variants.echo_flags(variant)):], list(extra), name)
        names = [name for name, _, _ in kernel_checks.SERVERS]
        self.assertEqual(len(set(names)), len(names))
        self.assertLessEqual(set(kernel_checks.LEFT_OUT), set(names))

    def test_servers_need_nothing_61_lacks(self):
        for name, variant, extra in kernel_checks.SERVERS:
            self.assertEqual(requires_after_61(kernel_checks.server_flags(variant, extra)), [], name)

    def test_refusals_are_variants_that_need_what_61_lacks(self):
        for variant, words in kernel_checks.REFUSED:
            needed = requires_after_61(variants.echo_flags(variant))
            self.assertTrue(needed, f"{variant} needs nothing 6.1 lacks")
            self.assertTrue(any(word in words for word in needed), f"{variant}: {needed} against {words}")
        self.assertEqual(requires_after_61(variants.echo_flags(kernel_checks.UNRUNNABLE_ROW)), ["incremental buffer"])


if __name__ == "__main__":
    unittest.main()
