//! Benchmark 5, image pull: pull and unpack a multi-layer ~200 MB image from the
//! loopback registry, against `skopeo copy` of the same image to a
//! directory (and, where umoci is installed, `skopeo copy` to an OCI
//! layout + `umoci unpack`: a pull that also unpacks).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::Ctx;
use crate::baseline::which;
use crate::launch::{BIG_NODE, launch_once};
use crate::world::{check, run};

const MIB: f64 = 1024.0 * 1024.0;

pub fn run_bench(ctx: &mut Ctx) -> anyhow::Result<()> {
    let reps = ctx.opts.pull_reps;
    eprintln!("[pull] building and pushing a {} MiB image of {} layers", ctx.opts.pull_mib, ctx.opts.pull_layers);
    let (mib, layers) = (ctx.opts.pull_mib, ctx.opts.pull_layers);
    let big = ctx.images()?.big(mib, layers)?;
    let reference = ctx.images()?.reference(&big.name);
    let skopeo = which("skopeo").ok_or_else(|| anyhow::anyhow!("skopeo is not installed"))?;
    let umoci = which("umoci");
    let (mut berth_pull, mut berth_total, mut skopeo_dir, mut skopeo_umoci) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for rep in 0..reps {
        check()?;
        eprintln!("[pull] round {}/{reps}: berth (fresh data dir), skopeo copy", rep + 1);
        {
            let berth = ctx.berth(&format!("pull-{rep}"), BIG_NODE, "info,sqlx=warn")?;
            berth.register_sleeper("bench-big", &reference)?;
            let mut client = berth.client();
            let l = launch_once(&berth, &mut client, "bench-big", Duration::from_millis(10))?;
            berth_pull.push(l.pull);
            berth_total.push(l.total.as_secs_f64());
            let left = berth.finish();
            ctx.leftovers(left);
            let _ = std::fs::remove_dir_all(ctx.work().join(format!("pull-{rep}")));
        }
        let dest = ctx.work().join(format!("skopeo-{rep}"));
        let began = Instant::now();
        run(Command::new(&skopeo)
            .args(["--insecure-policy", "copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{reference}"))
            .arg(format!("dir:{}", dest.display())))?;
        skopeo_dir.push(began.elapsed().as_secs_f64());
        std::fs::remove_dir_all(&dest)?;
        if let Some(umoci) = &umoci {
            let (layout, bundle) = (ctx.work().join(format!("oci-{rep}")), ctx.work().join(format!("bundle-{rep}")));
            let began = Instant::now();
            run(Command::new(&skopeo)
                .args(["--insecure-policy", "copy", "--quiet", "--src-tls-verify=false"])
                .arg(format!("docker://{reference}"))
                .arg(format!("oci:{}:latest", layout.display())))?;
            run(Command::new(umoci).arg("unpack").arg("--image").arg(format!("{}:latest", layout.display())).arg(&bundle))?;
            skopeo_umoci.push(began.elapsed().as_secs_f64());
            std::fs::remove_dir_all(&layout)?;
            std::fs::remove_dir_all(&bundle)?;
        }
    }
    let r = &mut ctx.report;
    let size = format!(
        "{} layers, {:.0} MiB unpacked in 256 KiB files, {:.0} MiB compressed (gzip)",
        big.layers,
        big.unpacked_bytes as f64 / MIB,
        big.compressed_bytes as f64 / MIB
    );
    r.samples(
        "pull.berth",
        "s",
        &format!("Berth's pull of an uncached image ({size}) from the loopback registry: pullStartedAt → pullStoppedAt of a RunTask on a fresh data dir (manifest, blobs, digests verified, layers unpacked into the cache); {reps} rounds"),
        &berth_pull,
    );
    r.samples("pull.berth.launch", "s", "The same tasks' RunTask → RUNNING", &berth_total);
    r.samples(
        "pull.skopeo_dir",
        "s",
        &format!("Baseline: `skopeo copy docker://… dir:…` of the same image (fetches and verifies blobs; does not unpack); {reps} rounds, alternating with Berth"),
        &skopeo_dir,
    );
    if umoci.is_some() {
        r.samples("pull.skopeo_umoci", "s", "Second baseline: `skopeo copy docker://… oci:…` then `umoci unpack` (a pull that also unpacks)", &skopeo_umoci);
    } else {
        r.not_measured("pull.skopeo_umoci", "umoci is not installed", true);
    }
    r.ratio("pull.berth", "pull.skopeo_dir");
    r.ratio("pull.berth", "pull.skopeo_umoci");
    let skopeo = r.figure("pull.skopeo_dir").map(|f| f.value.headline());
    r.target("pull.berth", "no slower than skopeo copy (median)", |f| skopeo.is_some_and(|s| f.value.headline() <= s));
    Ok(())
}
