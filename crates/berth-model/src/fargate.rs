//! Fargate task sizes: reading the task-level `cpu` and `memory` strings
//! as ECS accepts them, and the table of valid combinations.

use crate::ModelError;

/// CPU units in one vCPU.
const UNITS_PER_VCPU: f64 = 1024.0;
/// MiB in one GB as ECS counts it ("1 GB" is 1024 MiB).
const MIB_PER_GB: f64 = 1024.0;

/// The memory sizes one Fargate CPU size allows.
enum Memory {
    /// Exactly these values.
    Values(&'static [u32]),
    /// From `min` to `max` inclusive, in increments of `step`.
    Range { min: u32, max: u32, step: u32 },
}

impl Memory {
    fn allows(&self, mib: u32) -> bool {
        match *self {
            Self::Values(values) => values.contains(&mib),
            Self::Range { min, max, step } => (min..=max).step_by(step as usize).any(|m| m == mib),
        }
    }

    fn describe(&self) -> String {
        match *self {
            Self::Values(values) => format!("{} MiB", join(values.iter())),
            Self::Range { min, max, step } => format!("{min} to {max} MiB in increments of {step} MiB"),
        }
    }
}

/// One row of the Fargate size table.
struct Size {
    cpu: u32,
    memory: Memory,
}

/// Fargate's task sizes (Linux), as in ECS's "Task size" documentation.
const SIZES: [Size; 7] = [
    Size { cpu: 256, memory: Memory::Values(&[512, 1024, 2048]) },
    Size { cpu: 512, memory: Memory::Range { min: 1024, max: 4096, step: 1024 } },
    Size { cpu: 1024, memory: Memory::Range { min: 2048, max: 8192, step: 1024 } },
    Size { cpu: 2048, memory: Memory::Range { min: 4096, max: 16384, step: 1024 } },
    Size { cpu: 4096, memory: Memory::Range { min: 8192, max: 30720, step: 1024 } },
    Size { cpu: 8192, memory: Memory::Range { min: 16384, max: 61440, step: 4096 } },
    Size { cpu: 16384, memory: Memory::Range { min: 32768, max: 122880, step: 8192 } },
];

fn join<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

/// The Fargate CPU sizes, in CPU units.
pub fn cpu_values() -> Vec<u32> {
    SIZES.iter().map(|s| s.cpu).collect()
}

/// Checks that `cpu_units` and `memory_mib` are a Fargate task size. The
/// error names the values that would be valid.
pub fn check_size(cpu_units: u32, memory_mib: u32) -> Result<(), ModelError> {
    let no_config = format!("No Fargate configuration exists for given values: {cpu_units} CPU, {memory_mib} memory.");
    let Some(size) = SIZES.iter().find(|s| s.cpu == cpu_units) else {
        return Err(ModelError::client(format!(
            "{no_config} Valid CPU values: {}.{}",
            join(cpu_values().iter()),
            cpus_allowing(memory_mib)
        )));
    };
    if size.memory.allows(memory_mib) {
        return Ok(());
    }
    Err(ModelError::client(format!(
        "{no_config} Valid memory values for {cpu_units} CPU: {}.{}",
        size.memory.describe(),
        cpus_allowing(memory_mib)
    )))
}

/// " 3072 MiB is available with CPU 512, 1024." or "" when no CPU size
/// allows that memory.
fn cpus_allowing(memory_mib: u32) -> String {
    let cpus: Vec<u32> = SIZES.iter().filter(|s| s.memory.allows(memory_mib)).map(|s| s.cpu).collect();
    if cpus.is_empty() {
        String::new()
    } else {
        format!(" {memory_mib} MiB is available with CPU {}.", join(cpus.iter()))
    }
}

/// Reads a task-level `cpu`: CPU units ("256", "1024") or vCPUs ("0.25
/// vCPU", "1 vCPU", "1vcpu"; case-insensitive, spaces optional). Returns
/// CPU units.
pub fn parse_cpu(raw: &str) -> Result<u32, ModelError> {
    let invalid = || {
        ModelError::client(format!(
            "Invalid 'cpu' setting for task: '{raw}'. Give CPU units as a whole number (for example \"1024\") \
             or vCPUs (for example \"1 vCPU\", \"0.25 vcpu\")."
        ))
    };
    let (number, unit) = split_unit(raw);
    match unit.as_str() {
        "" => whole(number),
        "vcpu" => scaled(number, UNITS_PER_VCPU),
        _ => None,
    }
    .ok_or_else(invalid)
}

/// Reads a task-level `memory`: MiB ("512", "2048") or GB ("0.5 GB",
/// "2GB", "2 gb"; 1 GB is 1024 MiB). Returns MiB.
pub fn parse_memory(raw: &str) -> Result<u32, ModelError> {
    let invalid = || {
        ModelError::client(format!(
            "Invalid 'memory' setting for task: '{raw}'. Give MiB as a whole number (for example \"2048\") \
             or GB (for example \"2 GB\", \"0.5GB\")."
        ))
    };
    let (number, unit) = split_unit(raw);
    match unit.as_str() {
        "" => whole(number),
        "gb" => scaled(number, MIB_PER_GB),
        _ => None,
    }
    .ok_or_else(invalid)
}

/// Splits "0.25 vCPU" into ("0.25", "vcpu"): the number, and the unit in
/// lowercase without surrounding spaces.
fn split_unit(raw: &str) -> (&str, String) {
    let raw = raw.trim();
    let at = raw.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(raw.len());
    (raw[..at].trim_end(), raw[at..].to_ascii_lowercase())
}

/// A positive whole number of digits only.
fn whole(number: &str) -> Option<u32> {
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    number.parse::<u32>().ok().filter(|n| *n > 0)
}

/// A decimal number ("1", "0.25", ".5") times `factor`, when the product
/// is a positive whole number.
fn scaled(number: &str, factor: f64) -> Option<u32> {
    let digits_and_one_point = !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && number.bytes().filter(|b| *b == b'.').count() <= 1
        && number != ".";
    if !digits_and_one_point {
        return None;
    }
    let product = number.parse::<f64>().ok()? * factor;
    let fits = product > 0.0 && product.fract() == 0.0 && product <= f64::from(u32::MAX);
    fits.then_some(product as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_strings() {
        for (raw, units) in [
            ("256", 256),
            ("1024", 1024),
            ("1 vCPU", 1024),
            ("1vcpu", 1024),
            ("0.25 vCPU", 256),
            (".5 vcpu", 512),
            ("2 VCPU", 2048),
            (" 4 vCPU ", 4096),
            ("0.125vCPU", 128),
        ] {
            assert_eq!(parse_cpu(raw), Ok(units), "{raw:?}");
        }
        for raw in
            ["", "abc", "0", "-256", "+256", "256.0", "1.5", "0.1 vCPU", "1 GB", "1 vCPUs", "1..5 vCPU", "inf vCPU"]
        {
            let err = parse_cpu(raw).unwrap_err();
            assert_eq!(err.aws_type(), "ClientException", "{raw:?}");
            assert!(err.to_string().contains("vCPU"), "says which forms are accepted: {err}");
        }
    }

    #[test]
    fn memory_strings() {
        for (raw, mib) in [
            ("512", 512),
            ("2048", 2048),
            ("0.5 GB", 512),
            ("2 GB", 2048),
            ("2GB", 2048),
            ("2 gb", 2048),
            ("1.5GB", 1536),
        ] {
            assert_eq!(parse_memory(raw), Ok(mib), "{raw:?}");
        }
        for raw in ["", "0", "2 TB", "2 MiB", "2 vCPU", "0.0001 GB", "1e3", "GB"] {
            let err = parse_memory(raw).unwrap_err();
            assert_eq!(err.aws_type(), "ClientException", "{raw:?}");
            assert!(err.to_string().contains("GB"), "says which forms are accepted: {err}");
        }
    }

    #[test]
    fn size_table_edges() {
        #[rustfmt::skip]
        let cases: &[(u32, &[u32], &[u32])] = &[
            // cpu, valid (first, last, inside), invalid (off-step, below, above)
            (256, &[512, 1024, 2048], &[1536, 3072, 256, 4096]),
            (512, &[1024, 2048, 4096], &[1536, 512, 5120]),
            (1024, &[2048, 5120, 8192], &[2560, 1024, 9216]),
            (2048, &[4096, 9216, 16384], &[4608, 3072, 17408]),
            (4096, &[8192, 20480, 30720], &[8704, 7168, 31744]),
            (8192, &[16384, 20480, 61440], &[17408, 12288, 65536]),
            (16384, &[32768, 40960, 122880], &[36864, 24576, 131072]),
        ];
        for (cpu, valid, invalid) in cases {
            for mem in *valid {
                assert_eq!(check_size(*cpu, *mem), Ok(()), "{cpu} CPU, {mem} MiB");
            }
            for mem in *invalid {
                let err = check_size(*cpu, *mem).unwrap_err();
                assert_eq!(err.aws_type(), "ClientException");
                assert!(err.to_string().contains(&format!("Valid memory values for {cpu} CPU")), "{err}");
            }
        }
    }

    #[test]
    fn invalid_memory_names_the_valid_values() {
        let err = check_size(256, 4096).unwrap_err();
        assert_eq!(
            err.to_string(),
            "No Fargate configuration exists for given values: 256 CPU, 4096 memory. \
             Valid memory values for 256 CPU: 512, 1024, 2048 MiB. 4096 MiB is available with CPU 512, 1024, 2048."
        );
        let err = check_size(4096, 31744).unwrap_err().to_string();
        assert!(err.contains("8192 to 30720 MiB in increments of 1024 MiB"), "{err}");
    }

    #[test]
    fn invalid_cpu_names_the_valid_cpu_values() {
        for cpu in [0, 128, 300, 3072, 32768] {
            let err = check_size(cpu, 1024).unwrap_err();
            assert_eq!(err.aws_type(), "ClientException");
            assert!(err.to_string().contains("Valid CPU values: 256, 512, 1024, 2048, 4096, 8192, 16384."), "{err}");
        }
        assert!(check_size(300, 1024).unwrap_err().to_string().ends_with("1024 MiB is available with CPU 256, 512."));
    }
}
