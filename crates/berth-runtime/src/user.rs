//! ECS `user` → uid, gid and supplementary groups, resolved in the
//! container's root filesystem (`/etc/passwd`, `/etc/group`) as Docker does.

use std::path::Path;

use crate::SandboxError;

/// A resolved user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct User {
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Supplementary gids.
    pub additional_gids: Vec<u32>,
}

struct Entry {
    name: String,
    id: u32,
    gid: u32,
    members: Vec<String>,
}

/// Resolves `user` (`uid`, `uid:gid`, `name`, `name:group`, ...) against the
/// files under `rootfs`. `None` is root.
pub fn resolve(user: Option<&str>, rootfs: &Path) -> Result<User, SandboxError> {
    let Some(spec) = user else {
        return Ok(User::default());
    };
    let unknown = |reason: String| SandboxError::UnknownUser {
        user: spec.into(),
        reason,
    };
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = read_db(rootfs, "passwd", |f| {
        Some(Entry {
            name: f.first()?.to_string(),
            id: f.get(2)?.parse().ok()?,
            gid: f.get(3)?.parse().ok()?,
            members: vec![],
        })
    });
    let groups = read_db(rootfs, "group", |f| {
        let id = f.get(2)?.parse().ok()?;
        Some(Entry {
            name: f.first()?.to_string(),
            id,
            gid: id,
            members: f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
        })
    });
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => passwd.iter().find(|e| e.id == uid),
        Err(_) => Some(
            passwd
                .iter()
                .find(|e| e.name == user_part)
                .ok_or_else(|| unknown(format!("no user {user_part:?} in /etc/passwd")))?,
        ),
    };
    let uid = user_part
        .parse::<u32>()
        .unwrap_or_else(|_| entry.map_or(0, |e| e.id));
    let gid = match group_part {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|e| e.name == g)
                .map(|e| e.id)
                .ok_or_else(|| unknown(format!("no group {g:?} in /etc/group")))?,
        },
        None => entry.map_or(0, |e| e.gid),
    };
    let additional_gids = match (entry, group_part) {
        (Some(e), None) => groups
            .iter()
            .filter(|g| g.members.contains(&e.name) && g.gid != gid)
            .map(|g| g.gid)
            .collect(),
        _ => Vec::new(),
    };
    Ok(User {
        uid,
        gid,
        additional_gids,
    })
}

/// Reads `/etc/<name>` of the rootfs, refusing symlinks (which could point
/// out of the container's files).
fn read_db(rootfs: &Path, name: &str, parse: impl Fn(&[&str]) -> Option<Entry>) -> Vec<Entry> {
    let etc = rootfs.join("etc");
    let file = etc.join(name);
    let is_link = |p: &Path| {
        std::fs::symlink_metadata(p)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(true)
    };
    if is_link(&etc) || is_link(&file) {
        return Vec::new();
    }
    std::fs::read_to_string(&file)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| parse(&l.split(':').collect::<Vec<_>>()))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\napp:x:1001:\nwheel:x:10:app,bob\nstaff:x:50:\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn forms_docker_accepts() {
        let r = rootfs();
        let p = r.path();
        assert_eq!(resolve(None, p).unwrap(), User::default());
        assert_eq!(
            resolve(Some("1000:1000"), p).unwrap(),
            User {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            resolve(Some("app"), p).unwrap(),
            User {
                uid: 1000,
                gid: 1001,
                additional_gids: vec![10]
            }
        );
        assert_eq!(
            resolve(Some("1000"), p).unwrap(),
            User {
                uid: 1000,
                gid: 1001,
                additional_gids: vec![10]
            }
        );
        assert_eq!(
            resolve(Some("app:staff"), p).unwrap(),
            User {
                uid: 1000,
                gid: 50,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            resolve(Some("4242"), p).unwrap(),
            User {
                uid: 4242,
                gid: 0,
                additional_gids: vec![]
            }
        );
        assert!(resolve(Some("nobody"), p).is_err());
        assert!(resolve(Some("app:nogroup"), p).is_err());
    }
}
