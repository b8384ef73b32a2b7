"""The launcher's and benchmarks/run --kernel's pure parts, without booting anything: which kernel is
the default, KVM or TCG, the guest's command line, what the guest's run is given, how reports name
the kernel. The boot itself is make test-kernels' (benchmarks/kernel-tests)."""

import argparse
import os
import shlex
import subprocess
import sys
import unittest
from unittest import mock

from benchkit import kernel_run, vm
from benchkit.paths import BENCH_DIR


class Kernels(unittest.TestCase):
    def test_the_newest_6_1_is_the_default_by_number_not_by_text(self):
        found = ["/boot/vmlinuz-6.1.0-9-amd64", "/boot/vmlinuz-6.1.0-28-amd64", "/boot/vmlinuz-6.1.0-10-amd64"]
        with mock.patch("glob.glob", return_value=found):
            self.assertEqual(vm.default_kernel(), "/boot/vmlinuz-6.1.0-28-amd64")
        with mock.patch("glob.glob", return_value=[]):
            self.assertIsNone(vm.default_kernel())

    def test_release_is_the_name_after_vmlinuz(self):
        self.assertEqual(vm.release("/boot/vmlinuz-6.1.0-57-amd64"), "6.1.0-57-amd64")
        self.assertEqual(vm.release("/tmp/bzImage"), "bzImage")

    def test_missing_kernel_is_named_with_the_install_step(self):
        missing = vm.problems("/nonexistent/vmlinuz-6.1.0-1-amd64")
        self.assertIn("the kernel /nonexistent/vmlinuz-6.1.0-1-amd64", missing)

    def test_run_refuses_with_what_is_missing_before_booting(self):
        with mock.patch("subprocess.Popen") as popen, self.assertRaises(vm.VMError) as caught:
            vm.run(["true"], "/nonexistent/vmlinuz-6.1.0-1-amd64", say=lambda text: None)
        popen.assert_not_called()
        self.assertIn("make vm-deps", str(caught.exception))


class Accelerator(unittest.TestCase):
    def test_tcg_unless_kvm_is_asked_for(self):
        self.assertEqual(vm.accelerator(False), ("tcg", None))

    def test_kvm_when_asked_and_dev_kvm_is_usable_else_tcg_with_a_note(self):
        with mock.patch("os.access", return_value=True):
            self.assertEqual(vm.accelerator(True), ("kvm", None))
        with mock.patch("os.access", return_value=False):
            accel, note = vm.accelerator(True)
            self.assertEqual(accel, "tcg")
            self.assertIn("/dev/kvm", note)

    def test_the_environment_asks_for_kvm_with_anything_but_empty_or_0(self):
        for value, asked in (("1", True), ("yes", True), ("0", False), ("", False)):
            with mock.patch.dict(os.environ, {vm.KVM_ENV: value}):
                self.assertEqual(vm.kvm_asked_by_environment(), asked, value)

    def test_vng_is_told_to_avoid_kvm_only_under_tcg(self):
        tcg = vm.vng_command("/boot/k", "true", "tcg", rwdirs=["/tmp/a", "/tmp/b"])
        kvm = vm.vng_command("/boot/k", "true", "kvm")
        self.assertIn("--disable-kvm", tcg)
        self.assertNotIn("--disable-kvm", kvm)
        self.assertEqual(tcg[tcg.index("--rwdir") + 1], "/tmp/a")
        self.assertEqual(tcg.count("--rwdir"), 2)
        self.assertEqual(tcg[-2:], ["--", "true"])


class GuestScript(unittest.TestCase):
    def test_the_command_survives_the_guest_shell_and_gets_the_marker(self):
        command = ["printf", "%s|", "two words", "it's", "$HOME"]
        # The guest's shell runs the line; a local shell must see the same arguments, the folder and the marker.
        r = subprocess.run(["sh", "-c", vm.guest_script(command, "/tmp", "tcg")], capture_output=True, text=True)
        self.assertEqual(r.stdout, "two words|it's|$HOME|")
        r = subprocess.run(["sh", "-c", vm.guest_script(["sh", "-c", 'printf "$ON_KERNEL $PWD"'], "/tmp", "kvm")],
                           capture_output=True, text=True)
        self.assertEqual(r.stdout, "kvm /tmp")

    def test_the_guest_gets_this_machines_path(self):
        with mock.patch.dict(os.environ, {"PATH": "/opt/x/bin:/usr/bin"}):
            self.assertIn(shlex.quote("PATH=/opt/x/bin:/usr/bin"), vm.guest_script(["true"], "/", "tcg"))


class Reports(unittest.TestCase):
    def test_the_guest_marker_becomes_the_reports_words(self):
        with mock.patch.dict(os.environ, {vm.MARKER: "tcg"}):
            self.assertEqual(vm.report_note(), "under TCG: emulated, no speed meaning")
        with mock.patch.dict(os.environ, {vm.MARKER: "kvm"}):
            self.assertEqual(vm.report_note(), "under KVM")
        with mock.patch.dict(os.environ, {vm.MARKER: "other"}):
            self.assertIsNone(vm.report_note())

    def test_kernel_text_adds_the_vm_note_only_when_there_is_one(self):
        self.assertEqual(vm.kernel_text({"kernel": "6.1.0-57-amd64", "vm": "under KVM"}), "6.1.0-57-amd64, under KVM")
        self.assertEqual(vm.kernel_text({"kernel": "6.18.4"}), "6.18.4")  # older results have no "vm"
        self.assertEqual(vm.kernel_text({"kernel": "6.18.4", "vm": None}), "6.18.4")


class RunOnKernel(unittest.TestCase):
    def test_the_guest_gets_the_same_arguments_less_kernel_and_out(self):
        argv = ["--quick", "--kernel", "/boot/k", "--rounds", "1", "--out=/mine", "--ker=/boot/k",
                "--variant", "a=--out x", "--no-plots"]
        self.assertEqual(kernel_run.guest_argv(argv, "/R"),
                         ["--quick", "--rounds", "1", "--variant", "a=--out x", "--no-plots",
                          "--no-build", "--out", "/R"])

    def test_the_time_limit_covers_four_estimates_or_the_budget(self):
        fixed = argparse.Namespace(rounds=3, budget=40)
        self.assertEqual(kernel_run.timeout_for(fixed, 100), 1000)
        auto = argparse.Namespace(rounds=kernel_run.AUTO, budget=40)
        self.assertEqual(kernel_run.timeout_for(auto, 100), 600 + 4 * 40 * 60)

    def test_a_missing_kernel_is_a_one_line_usage_error(self):
        r = subprocess.run([sys.executable, os.path.join(BENCH_DIR, "run"), "--quick", "--kernel", "/nonexistent"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr.strip().splitlines()[-1], "benchmarks/run: error: --kernel /nonexistent: no such file")

    def test_on_kernel_without_a_command_is_a_usage_error(self):
        r = subprocess.run([sys.executable, os.path.join(BENCH_DIR, "on-kernel")], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn("no command", r.stderr)


if __name__ == "__main__":
    unittest.main()
