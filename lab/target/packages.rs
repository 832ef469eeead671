//! Debian packages a scenario needs (`packages = ["nginx"]`): installed with apt into an image
//! derived from the suite's target image, one image per (base image, package set).
//!
//! The derived image is tagged `unitlab-packages:<suite>-<hash>` and labelled with the same
//! hash, of the recipe, the base image's id and the sorted package list: an unchanged set on
//! an unchanged base is found by one inspect call and reused; a rebuilt base (a new
//! buggy-server, a new Containerfile) gives a new hash, so packages never sit on a stale base.
//! Builds take the suite's host-wide image lock, like the target image itself.

use std::collections::HashMap;
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::progress::Progress;
use crate::systemd::Suite;
use crate::target::engine::{Engine, EngineError};
use crate::target::image::{image_with_inputs, run_build, BuildFailure, BuildLock, ImageError, ImageRef, LABEL_INPUTS, LABEL_SUITE};

/// Bump when the recipe below changes in a way the inputs do not show.
const RECIPE_VERSION: &str = "unitlab-packages-v3";
/// The repository of derived images.
pub const PACKAGES_REPOSITORY: &str = "unitlab-packages";
/// Where a derived image with a Go toolchain holds its compiled standard library (see
/// [`containerfile`]): `GOCACHE=/var/cache/go-build` in a unit that runs `go build`.
const GO_BUILD_CACHE: &str = "/var/cache/go-build";
/// The label listing the packages of a derived image, for people reading `docker images`.
pub const LABEL_PACKAGES: &str = "unitlab.image.packages";

#[derive(Debug, thiserror::Error)]
pub enum PackagesError {
    #[error(
        "Debian package `{package}` is not in {suite}'s archive (apt: \"Unable to locate package {package}\")\n  \
         fix: check the name (`apt-cache policy {package}` on a {suite} system), or remove it from `packages`"
    )]
    Unknown { package: String, suite: Suite },
    #[error("installing {packages} into an image on {base} failed: {message}\n  fix: read the build log above; check that Debian's mirror is reachable from a build container")]
    Build { packages: String, base: String, message: String },
    #[error("build the {suite} image with {packages}: {source}")]
    Engine {
        suite: Suite,
        packages: String,
        #[source]
        source: EngineError,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("image {tag} was built but cannot be found by its inputs label")]
    Missing { tag: String },
}

/// The inputs hash of a derived image: recipe, base image id, packages (sorted, so the order
/// written does not make another image).
pub fn packages_hash(base_id: &str, packages: &[String]) -> String {
    let mut sorted: Vec<&str> = packages.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut h = Sha256::new();
    for part in [RECIPE_VERSION, base_id].into_iter().chain(sorted) {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())[..16].to_string()
}

/// The tag of the derived image of `suite` with this inputs hash.
pub fn packages_tag(suite: Suite, hash: &str) -> String {
    format!("{PACKAGES_REPOSITORY}:{}-{hash}", suite.name())
}

/// The build recipe: apt on the target image. `--no-install-recommends` as in the target
/// image itself; a package's postinst cannot start its service here (no systemd runs during
/// a build), which is what a scenario does later, under its own steps.
///
/// The postinst does *enable* it, though (links in `multi-user.target.wants/` and the like),
/// which would start it at every boot: the scenario's `start` would then find it running, and
/// a service that cannot start in a container (Debian's redis-server on a target without
/// `CAP_SETFCAP` failed with 217/USER) would bring the boot up degraded, so the scenario could
/// not even show that failure. The `.wants/` and `.requires/` links the install added are
/// removed; everything else it placed (aliases such as trixie's `sshd.service`, config, keys)
/// stays.
///
/// One warm-up, when the packages brought a Go toolchain: Debian's Go from 1.20 on ships no
/// compiled standard library, so every scenario that builds a Go program compiled it again on
/// a fresh target (seed 002's build in `scenarios/seeds-real/` on trixie's Go 1.24: 21.9 s of
/// both cores, idle, per run; 2.3 s with this cache). It is compiled once here into
/// `GO_BUILD_CACHE`; a build that sets `GOCACHE` to it compiles only its own code.
pub fn containerfile(base: &str, packages: &[String]) -> String {
    format!(
        "FROM {base}\n\
         ENV DEBIAN_FRONTEND=noninteractive\n\
         RUN find /etc/systemd/system -type l | sort > /tmp/links.before \\\n \
         && apt-get update \\\n \
         && apt-get install -y --no-install-recommends {} \\\n \
         && apt-get clean \\\n \
         && rm -rf /var/lib/apt/lists/* \\\n \
         && find /etc/systemd/system -type l | sort > /tmp/links.after \\\n \
         && comm -13 /tmp/links.before /tmp/links.after | grep -E '\\.(wants|requires)/' | xargs -r rm -v \\\n \
         && rm /tmp/links.before /tmp/links.after \\\n \
         && if command -v go >/dev/null; then GOCACHE={GO_BUILD_CACHE} go build std; fi\n",
        packages.join(" ")
    )
}

/// The package apt could not find, from its "E: Unable to locate package NAME" line (trixie's
/// apt colours it: the name ends at the first escape or blank).
pub fn unknown_package(log: &str) -> Option<String> {
    let rest = log.lines().find_map(|l| l.split("Unable to locate package ").nth(1))?;
    let name: String = rest.chars().take_while(|c| !c.is_whitespace() && !c.is_control()).collect();
    (!name.is_empty()).then_some(name)
}

/// The image of `base` with `packages` installed: found by its inputs hash, else built (with
/// progress lines) under the suite's host-wide build lock.
pub async fn ensure_packages_image(
    engine: &Engine,
    base: &ImageRef,
    packages: &[String],
    progress: &dyn Progress,
) -> Result<ImageRef, PackagesError> {
    let suite = base.suite;
    let hash = packages_hash(&base.id, packages);
    let tag = packages_tag(suite, &hash);
    let found = |id: String, reused: bool| ImageRef { suite, tag: tag.clone(), id, inputs_hash: hash.clone(), reused };
    if let Some(id) = image_with_inputs(engine, &tag, &hash).await? {
        return Ok(found(id, true));
    }
    let _lock = BuildLock::acquire(suite, progress).await?;
    // Another process may have built it while this one waited.
    if let Some(id) = image_with_inputs(engine, &tag, &hash).await? {
        return Ok(found(id, true));
    }
    let listed = packages.join(" ");
    let started = Instant::now();
    progress.step(&format!("building {tag}: apt-get install {listed} on {}", base.tag));
    let mut context = tar::Builder::new(Vec::new());
    // FROM the inputs tag: it names exactly the image whose id is hashed.
    let recipe = containerfile(&base.tag, packages);
    let mut header = tar::Header::new_gnu();
    header.set_size(recipe.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    let io = |e: std::io::Error| ImageError::Io { operation: "write the packages build context".into(), source: e };
    context.append_data(&mut header, "Containerfile", recipe.as_bytes()).map_err(io)?;
    let context = context.into_inner().map_err(io)?;
    let labels = HashMap::from([
        (LABEL_INPUTS.to_string(), hash.clone()),
        (LABEL_SUITE.to_string(), suite.name().to_string()),
        (LABEL_PACKAGES.to_string(), listed.clone()),
    ]);
    match run_build(engine, context, &tag, &HashMap::new(), &labels, progress).await {
        Ok(_) => {}
        Err(BuildFailure::Step { message, log }) => {
            if let Some(package) = unknown_package(&log) {
                return Err(PackagesError::Unknown { package, suite });
            }
            return Err(PackagesError::Build { packages: listed, base: base.tag.clone(), message });
        }
        Err(BuildFailure::Engine(source)) => return Err(PackagesError::Engine { suite, packages: listed, source }),
    }
    let id = image_with_inputs(engine, &tag, &hash).await?.ok_or_else(|| PackagesError::Missing { tag: tag.clone() })?;
    progress.finish(&format!("built {tag} in {:.0} s", started.elapsed().as_secs_f64()));
    Ok(found(id, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_hash_covers_base_and_package_set_not_order() {
        let a = packages_hash("sha256:1", &list(&["nginx", "curl"]));
        assert_eq!(a, packages_hash("sha256:1", &list(&["curl", "nginx"])), "order does not matter");
        assert_ne!(a, packages_hash("sha256:2", &list(&["curl", "nginx"])), "a new base is a new image");
        assert_ne!(a, packages_hash("sha256:1", &list(&["curl"])));
        assert_ne!(packages_hash("x", &list(&["ab", "c"])), packages_hash("x", &list(&["a", "bc"])), "names are separated");
        assert_eq!(packages_tag(Suite::Trixie, &a), format!("unitlab-packages:trixie-{a}"));
    }

    #[test]
    fn the_recipe_installs_with_apt_on_the_base() {
        let r = containerfile("sha256:abc", &list(&["nginx", "redis-server"]));
        assert!(r.starts_with("FROM sha256:abc\n"), "{r}");
        assert!(r.contains("apt-get install -y --no-install-recommends nginx redis-server"), "{r}");
        assert!(r.contains("comm -13 /tmp/links.before /tmp/links.after | grep -E '\\.(wants|requires)/' | xargs -r rm -v"), "{r}");
        assert!(r.ends_with("&& if command -v go >/dev/null; then GOCACHE=/var/cache/go-build go build std; fi\n"), "{r}");
    }

    #[test]
    fn apt_names_the_unknown_package() {
        let log = "Reading package lists...\nBuilding dependency tree...\nE: Unable to locate package nginxx\n";
        assert_eq!(unknown_package(log).as_deref(), Some("nginxx"));
        assert_eq!(unknown_package("E: Some other failure"), None);
        let trixie = "\u{1b}[1;31mError: \u{1b}[0mUnable to locate package unitlab-no-such-package\u{1b}[0m\n";
        assert_eq!(unknown_package(trixie).as_deref(), Some("unitlab-no-such-package"));
    }
}
