//! Attaching the program to interfaces through pinned bpf links.
//!
//! A link pinned at `<pin_path>/links/<mode>/<interface>` keeps the program attached after the daemon exits.
//! When a new daemon starts and finds the pin, it swaps its freshly loaded program into that link with
//! `bpf_link_update`, which is atomic: the interface is never without a program, so a restart leaves no window
//! in which denied sources get through. Detaching removes the pin and closes the link.

use std::path::PathBuf;

use aya::programs::Xdp;
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::xdp::{XdpLink, XdpLinkId};
use tracing::{info, warn};

use super::pins::PinDir;
use super::{AttachedMode, XdpError};
use crate::config::schema::AttachMode;

/// How an attachment is held.
enum Held {
    /// A bpf link pinned at `path`; we hold an fd on it too.
    Pinned { link: FdLink, path: PathBuf },
    /// A netlink attachment (kernels without XDP bpf links): owned by the program, cannot outlive the daemon.
    Owned(XdpLinkId),
}

pub struct Attached {
    pub interface: String,
    pub mode: AttachedMode,
    /// True when an existing pinned link was taken over (a restart without a gap).
    pub took_over: bool,
    held: Held,
}

impl Attached {
    pub fn is_pinned(&self) -> bool {
        matches!(self.held, Held::Pinned { .. })
    }
}

/// Attaches `program` to `interface`, taking over a pinned link from an earlier run when its mode fits.
pub fn attach(program: &mut Xdp, pins: &PinDir, interface: &str, wanted: AttachMode) -> Result<Attached, XdpError> {
    if let Some((path, mode)) = existing_pin(pins, interface) {
        let fits = match wanted {
            AttachMode::Auto => true,
            AttachMode::Native => mode == AttachedMode::Native,
            AttachMode::Generic => mode == AttachedMode::Generic,
        };
        if fits {
            match take_over(program, &path) {
                Ok(link) => {
                    info!(
                        interface,
                        mode = mode.as_str(),
                        "took over the pinned XDP link (no gap in protection)"
                    );
                    return Ok(Attached {
                        interface: interface.into(),
                        mode,
                        took_over: true,
                        held: Held::Pinned { link, path },
                    });
                }
                // The interface may have been recreated since (a link on a vanished device is defunct).
                Err(e) => warn!(interface, error = %e, "pinned XDP link unusable; attaching afresh"),
            }
        } else {
            warn!(
                interface,
                pinned = mode.as_str(),
                "pinned XDP link has another mode than configured; re-attaching (brief gap)"
            );
        }
        remove_pin(&path);
    }
    fresh(program, pins, interface, wanted)
}

fn take_over(program: &mut Xdp, path: &PathBuf) -> Result<FdLink, XdpError> {
    let link_err = |e: aya::programs::links::LinkError| XdpError::Link {
        path: path.clone(),
        message: e.to_string(),
    };
    let fd: FdLink = PinnedLink::from_pin(path).map_err(link_err)?.into();
    let xdp_link = XdpLink::try_from(fd).map_err(link_err)?;
    let id = program.attach_to_link(xdp_link).map_err(|e| XdpError::Link {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let link = program.take_link(id).map_err(|e| XdpError::Link {
        path: path.clone(),
        message: e.to_string(),
    })?;
    FdLink::try_from(link).map_err(link_err)
}

fn fresh(program: &mut Xdp, pins: &PinDir, interface: &str, wanted: AttachMode) -> Result<Attached, XdpError> {
    let try_mode = |program: &mut Xdp, m: AttachedMode| {
        program
            .attach(interface, m.kernel_mode())
            .map_err(|source| XdpError::Attach {
                interface: interface.to_owned(),
                mode: m.as_str(),
                source,
            })
    };
    let (id, mode) = match wanted {
        AttachMode::Native => (try_mode(program, AttachedMode::Native)?, AttachedMode::Native),
        AttachMode::Generic => (try_mode(program, AttachedMode::Generic)?, AttachedMode::Generic),
        AttachMode::Auto => match try_mode(program, AttachedMode::Native) {
            Ok(id) => (id, AttachedMode::Native),
            Err(native_err) => {
                warn!(interface, error = %native_err, "native XDP unavailable; falling back to generic mode");
                (try_mode(program, AttachedMode::Generic)?, AttachedMode::Generic)
            }
        },
    };
    let path = pins.link(mode, interface);
    let link = program.take_link(id).map_err(|e| XdpError::Link {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let held = match FdLink::try_from(link) {
        Ok(fd) => {
            let pinned = fd.pin(&path).map_err(|e| XdpError::Link {
                path: path.clone(),
                message: e.to_string(),
            })?;
            Held::Pinned {
                link: pinned.into(),
                path,
            }
        }
        Err(_) => {
            warn!(
                interface,
                "this kernel attached XDP through netlink; the attachment cannot be pinned, so it ends with the daemon"
            );
            // The link came back out of the program; attach again so the program owns it.
            let id = try_mode(program, mode)?;
            Held::Owned(id)
        }
    };
    info!(interface, mode = mode.as_str(), "XDP program attached");
    Ok(Attached {
        interface: interface.into(),
        mode,
        took_over: false,
        held,
    })
}

/// Detaches: removes the pin and closes the link (or detaches the netlink attachment).
pub fn detach(program: &mut Xdp, attached: Attached) {
    let Attached { interface, held, .. } = attached;
    match held {
        Held::Pinned { link, path } => {
            remove_pin(&path);
            drop(link);
        }
        Held::Owned(id) => {
            if let Err(e) = program.detach(id) {
                warn!(interface, error = %e, "detaching XDP failed");
                return;
            }
        }
    }
    info!(interface, "XDP program detached");
}

/// Leaves the program attached after exit (pinned links only).
pub fn keep(attached: Attached) {
    if attached.is_pinned() {
        info!(
            interface = attached.interface,
            "leaving the XDP program attached (xdp.keep_attached_on_exit)"
        );
    } else {
        warn!(
            interface = attached.interface,
            "cannot keep XDP attached: the attachment is not pinned"
        );
    }
}

/// Detaches links pinned for interfaces that are no longer configured, so no stale program keeps running.
pub fn remove_stale(pins: &PinDir, configured: &[String]) {
    for mode in [AttachedMode::Native, AttachedMode::Generic] {
        let Ok(dir) = std::fs::read_dir(pins.links().join(mode.as_str())) else {
            continue;
        };
        for entry in dir.flatten() {
            let interface = entry.file_name().to_string_lossy().into_owned();
            if !configured.contains(&interface) {
                info!(interface, "detaching XDP from an interface no longer configured");
                remove_pin(&entry.path());
            }
        }
    }
}

fn existing_pin(pins: &PinDir, interface: &str) -> Option<(PathBuf, AttachedMode)> {
    [AttachedMode::Native, AttachedMode::Generic]
        .into_iter()
        .find_map(|mode| {
            let path = pins.link(mode, interface);
            path.exists().then_some((path, mode))
        })
}

fn remove_pin(path: &PathBuf) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        warn!(path = %path.display(), error = %e, "removing a pinned XDP link failed");
    }
}
