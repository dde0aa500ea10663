//! The VMM behind a small trait: what a micro-VM is made of
//! ([`VmConfig`]), and how one VMM turns that into a process
//! ([`Vmm::command`]). QEMU's `microvm` machine ([`QemuMicrovm`]) is the
//! one Berth has; Firecracker or Cloud Hypervisor would be further
//! implementations where an operator has them (both take a kernel, an
//! initramfs, virtio-blk disks, a TAP and a vsock or serial channel).
//!
//! Pure: building the command line does no I/O, so it is unit-tested.

use std::ffi::OsString;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How the guest's CPU runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Hardware virtualization through /dev/kvm.
    Kvm,
    /// QEMU's emulator (no KVM, or a /dev/kvm that cannot run the guest).
    Tcg,
}

impl Accel {
    /// The name DescribeTasks shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kvm => "kvm",
            Self::Tcg => "tcg",
        }
    }
}

/// A disk attached as virtio-blk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Disk {
    /// A raw image file.
    pub path: PathBuf,
    /// The serial the guest finds it by (`/sys/block/vdX/serial`).
    pub serial: String,
    /// Attached read-only (shared image disks).
    pub read_only: bool,
}

/// A host↔guest channel: a named virtio-serial port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Port {
    /// The name the guest sees (`/sys/class/virtio-ports/*/name`).
    pub name: String,
    /// What the host side is.
    pub backend: PortBackend,
}

/// The host side of a port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PortBackend {
    /// The guest's output appended to this file (no process copies it, so
    /// it survives an agent restart as the sandbox's log files do).
    AppendFile(PathBuf),
    /// A pair of FIFOs `PATH.in` (host → guest) and `PATH.out`.
    Fifo(PathBuf),
}

/// A micro-VM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmConfig {
    /// How the CPU runs.
    pub accel: Accel,
    /// vCPUs.
    pub vcpus: u32,
    /// Guest RAM in MiB.
    pub memory_mib: u64,
    /// An uncompressed (PVH) kernel.
    pub kernel: PathBuf,
    /// The initramfs.
    pub initrd: PathBuf,
    /// The kernel command line.
    pub cmdline: String,
    /// Disks, in order.
    pub disks: Vec<Disk>,
    /// A TAP device (in the VMM's network namespace) and the guest's MAC.
    pub tap: Option<(String, String)>,
    /// virtio-serial ports.
    pub ports: Vec<Port>,
    /// Where the guest's serial console goes.
    pub console: PathBuf,
}

/// A virtual machine monitor.
pub trait Vmm: Send + Sync {
    /// Its name (for logs).
    fn name(&self) -> &'static str;
    /// The process that runs `vm` until the guest powers off: argv\[0\]
    /// first.
    fn command(&self, vm: &VmConfig) -> Vec<OsString>;
}

/// QEMU's `microvm` machine: no PCI, no firmware, virtio-mmio devices
/// only; `-nodefaults -no-user-config` so it has no device Berth did not
/// ask for, and its seccomp sandbox on.
#[derive(Clone, Debug)]
pub struct QemuMicrovm {
    /// `qemu-system-x86_64`.
    pub binary: PathBuf,
}

/// TCG's translation cache, in MiB. QEMU's default (1 GiB on 64-bit
/// hosts) is reserved lazily but is memory the task's cgroup would be
/// charged for; a small guest runs well in this.
pub const TCG_TB_MIB: u32 = 64;

/// The kernel command line Berth boots guests with (the measured recipe:
/// `no_timer_check` and the fixed TSC stop TCG hangs, the i8042 and PCI
/// probes are skipped, ACPI stays on because the virtio-mmio devices are
/// found through it and poweroff needs it).
pub const BASE_CMDLINE: &str = "console=ttyS0 reboot=t panic=-1 quiet no_timer_check \
tsc_early_khz=2600000 lpj=5200000 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd i8042.nokbd \
pci=off 8250.nr_uarts=1 cryptomgr.notests";

impl Vmm for QemuMicrovm {
    fn name(&self) -> &'static str {
        "qemu-microvm"
    }

    fn command(&self, vm: &VmConfig) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![self.binary.clone().into()];
        let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
        let (accel, cpu) = match vm.accel {
            Accel::Kvm => ("kvm".to_owned(), "host"),
            Accel::Tcg => (format!("tcg,tb-size={TCG_TB_MIB}"), "max"),
        };
        push(&["-M", "microvm,rtc=on", "-accel", &accel, "-cpu", cpu]);
        push(&["-m", &vm.memory_mib.to_string(), "-smp", &vm.vcpus.to_string()]);
        push(&["-nodefaults", "-no-user-config", "-nographic", "-sandbox", "on"]);
        let console = format!("file:{}", vm.console.display());
        push(&["-serial", &console]);
        let kernel = vm.kernel.display().to_string();
        let initrd = vm.initrd.display().to_string();
        push(&["-kernel", &kernel, "-initrd", &initrd, "-append", &vm.cmdline]);
        for (i, d) in vm.disks.iter().enumerate() {
            let ro = if d.read_only { ",readonly=on" } else { "" };
            let drive = format!("id=d{i},file={},format=raw,if=none,cache=unsafe{ro}", qemu_escape(&d.path));
            let device = format!("virtio-blk-device,drive=d{i},serial={}", d.serial);
            push(&["-drive", &drive, "-device", &device]);
        }
        if let Some((tap, mac)) = &vm.tap {
            let netdev = format!("tap,id=n0,ifname={tap},script=no,downscript=no");
            let device = format!("virtio-net-device,netdev=n0,mac={mac}");
            push(&["-netdev", &netdev, "-device", &device]);
        }
        if !vm.ports.is_empty() {
            let serial = format!("virtio-serial-device,max_ports={}", vm.ports.len().max(2) + 1);
            push(&["-device", &serial]);
        }
        for (i, p) in vm.ports.iter().enumerate() {
            let chardev = match &p.backend {
                PortBackend::AppendFile(path) => format!("file,id=p{i},path={},append=on", qemu_escape(path)),
                PortBackend::Fifo(path) => format!("pipe,id=p{i},path={}", qemu_escape(path)),
            };
            let device = format!("virtserialport,chardev=p{i},name={}", p.name);
            push(&["-chardev", &chardev, "-device", &device]);
        }
        a
    }
}

/// A path in a QEMU option list, where a comma is written twice.
fn qemu_escape(p: &std::path::Path) -> String {
    p.display().to_string().replace(',', ",,")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn vm(accel: Accel) -> VmConfig {
        VmConfig {
            accel,
            vcpus: 1,
            memory_mib: 544,
            kernel: "/k/vmlinux".into(),
            initrd: "/k/initrd.cpio".into(),
            cmdline: BASE_CMDLINE.into(),
            disks: vec![
                Disk { path: "/img/a,b.ext4".into(), serial: "berth-img0".into(), read_only: true },
                Disk { path: "/t/rw.ext4".into(), serial: "berth-rw".into(), read_only: false },
            ],
            tap: Some(("tap0".into(), "02:00:0a:00:00:05".into())),
            ports: vec![
                Port { name: "berth.events".into(), backend: PortBackend::AppendFile("/t/events.log".into()) },
                Port { name: "berth.control".into(), backend: PortBackend::Fifo("/t/ctl".into()) },
            ],
            console: "/t/console.log".into(),
        }
    }

    fn line(v: &VmConfig) -> String {
        let q = QemuMicrovm { binary: "qemu-system-x86_64".into() };
        q.command(v).iter().map(|s| s.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn the_command_line_has_only_what_the_task_needs() {
        let l = line(&vm(Accel::Tcg));
        for want in [
            "-M microvm,rtc=on -accel tcg,tb-size=64 -cpu max",
            "-m 544 -smp 1",
            "-nodefaults -no-user-config -nographic -sandbox on",
            "-serial file:/t/console.log",
            "-drive id=d0,file=/img/a,,b.ext4,format=raw,if=none,cache=unsafe,readonly=on -device virtio-blk-device,drive=d0,serial=berth-img0",
            "-drive id=d1,file=/t/rw.ext4,format=raw,if=none,cache=unsafe -device",
            "-netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-device,netdev=n0,mac=02:00:0a:00:00:05",
            "-chardev file,id=p0,path=/t/events.log,append=on -device virtserialport,chardev=p0,name=berth.events",
            "-chardev pipe,id=p1,path=/t/ctl -device virtserialport,chardev=p1,name=berth.control",
        ] {
            assert!(l.contains(want), "{want:?} not in {l}");
        }
        assert!(!l.contains("-pci"), "no PCI device: {l}");
        assert!(line(&vm(Accel::Kvm)).contains("-accel kvm -cpu host"));
        let mut bare = vm(Accel::Tcg);
        bare.tap = None;
        assert!(!line(&bare).contains("netdev"), "no NIC without a network");
    }
}
