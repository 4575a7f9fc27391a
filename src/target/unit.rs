//! A systemd unit, read over D-Bus: the only place in the crate that talks to D-Bus.
//!
//! [`Systemd::connect`] opens the system bus or the user's session bus (whose
//! `org.freedesktop.systemd1` is the user's service manager), [`Systemd::unit`] resolves a
//! name as systemctl does (no suffix means `.service`; templates' instances and aliases resolve
//! through `GetUnit`/`LoadUnit`, an alias's [`UnitInfo::id`] being the real unit) and reads what
//! gorescue needs: MainPID, InvocationID, the states, `Restart=`, `StandardError=`, the log
//! rate limit and filters, the control group.
//!
//! zbus 6 is async only; the calls here are driven by `zbus::block_on` on the calling thread.
//!
//! Properties that older systemds lack are optional here: `LogFilterPatterns` came with
//! systemd 253 (Debian 12 has 252, which has none: the list is empty there), `NRestarts` with
//! 235; `StandardError` is a property of `org.freedesktop.systemd1.Service` in 252 (its value
//! can be `inherit`, meaning whatever `StandardOutput` is).

use std::fmt;

use zbus::proxy::CacheProperties;
use zbus::{Connection, DBusError, OwnedObjectPath};

/// Which service manager: the system's, or the calling user's (`--user`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bus {
    System,
    User,
}

impl fmt::Display for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Bus::System => "system",
            Bus::User => "user",
        })
    }
}

/// What went wrong; each renders as one line naming the unit (or the bus).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("invalid unit name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("no such unit: {name}")]
    NoSuchUnit { name: String },
    #[error("{name} is not a service (it is a {kind} unit)")]
    NotAService { name: String, kind: String },
    #[error("{name} is not running ({active_state}/{sub_state}), it has no main process")]
    NotRunning {
        name: String,
        active_state: String,
        sub_state: String,
    },
    /// (`detail`, not `source`: thiserror would take a field named `source` for the cause.)
    #[error("cannot reach the {bus} bus: {detail}")]
    BusUnreachable { bus: String, detail: String },
    #[error("access denied to {name}: {detail}")]
    AccessDenied { name: String, detail: String },
    #[error("{0}")]
    Other(String),
}

/// What systemd says about one service unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitInfo {
    /// The unit's own name (for an alias: the real unit's).
    pub id: String,
    pub names: Vec<String>,
    pub description: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    /// 0 when it has no main process.
    pub main_pid: u32,
    /// 32 lowercase hex digits; None when the unit has none (never started).
    pub invocation_id: Option<String>,
    /// `Restart=`: no, on-failure, always, ...
    pub restart: String,
    /// None when this systemd does not count restarts (before 235).
    pub n_restarts: Option<u32>,
    /// `Result`: success, exit-code, signal, core-dump, timeout, ...
    pub result: String,
    /// `ExecMainCode` (a `CLD_*` code: 1 exited, 2 killed, 3 dumped; 0 while running).
    pub exec_main_code: i32,
    /// `ExecMainStatus`: the exit status or the signal number.
    pub exec_main_status: i32,
    /// `StandardOutput=` (journal, null, file:..., ...); None when not exposed.
    pub standard_output: Option<String>,
    /// `StandardError=`; `inherit` means the same as [`standard_output`](Self::standard_output).
    pub standard_error: Option<String>,
    /// `LogRateLimitIntervalUSec=`; 0 means journald's default applies.
    pub log_rate_limit_interval_usec: u64,
    /// `LogRateLimitBurst=`; 0 means journald's default applies.
    pub log_rate_limit_burst: u32,
    /// `LogLevelMax=`; -1 when unset.
    pub log_level_max: i32,
    /// `LogFilterPatterns=` as (is an allow pattern, regex); empty before systemd 253.
    pub log_filter_patterns: Vec<(bool, String)>,
    pub control_group: String,
    pub fragment_path: String,
}

impl UnitInfo {
    /// The main PID of a running service, or [`UnitError::NotRunning`].
    pub fn running_main_pid(&self) -> Result<u32, UnitError> {
        if self.main_pid == 0 || !matches!(self.active_state.as_str(), "active" | "reloading") {
            return Err(UnitError::NotRunning {
                name: self.id.clone(),
                active_state: self.active_state.clone(),
                sub_state: self.sub_state.clone(),
            });
        }
        Ok(self.main_pid)
    }

    /// `StandardError=` with `inherit` resolved to `StandardOutput=`.
    pub fn effective_standard_error(&self) -> Option<&str> {
        match self.standard_error.as_deref() {
            Some("inherit") => self.standard_output.as_deref(),
            other => other,
        }
    }
}

const UNIT_TYPES: &[&str] = &[
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
];

/// A unit name as systemctl would take it: no (known) suffix means `.service`; names with a
/// suffix are kept. Template instances (`foo@bar`) are fine; a bare template (`foo@`),
/// an empty name, a path and characters systemd does not allow in unit names are errors.
pub fn normalize(name: &str) -> Result<String, UnitError> {
    let bad = |reason: &str| UnitError::InvalidName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.starts_with('/') {
        return Err(bad("a path, not a unit name"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\@".contains(*c)))
    {
        return Err(bad(&format!("{c:?} is not allowed in unit names")));
    }
    let full = match name.rsplit_once('.') {
        Some((_, suffix)) if UNIT_TYPES.contains(&suffix) => name.to_string(),
        _ => format!("{name}.service"),
    };
    // 255 bytes at most (UNIT_NAME_MAX, with its NUL).
    if full.len() > 255 {
        return Err(bad("longer than 255 characters"));
    }
    let (prefix, _) = full.rsplit_once('.').expect("has a suffix");
    if prefix.is_empty() {
        return Err(bad("nothing before the suffix"));
    }
    if prefix.starts_with('@') {
        return Err(bad("nothing before the '@'"));
    }
    match prefix.matches('@').count() {
        0 => {}
        1 if prefix.ends_with('@') => {
            return Err(bad(&format!(
                "a template; name an instance, such as {}NAME.{}",
                prefix,
                full.rsplit_once('.').unwrap().1
            )));
        }
        1 => {}
        _ => return Err(bad("more than one '@'")),
    }
    Ok(full)
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
trait Manager {
    fn get_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1",
    assume_defaults = false
)]
trait Unit {
    #[zbus(property)]
    fn id(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn names(&self) -> zbus::Result<Vec<String>>;
    #[zbus(property)]
    fn description(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn load_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn load_error(&self) -> zbus::Result<(String, String)>;
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn sub_state(&self) -> zbus::Result<String>;
    #[zbus(property, name = "InvocationID")]
    fn invocation_id(&self) -> zbus::Result<Vec<u8>>;
    #[zbus(property)]
    fn fragment_path(&self) -> zbus::Result<String>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1",
    assume_defaults = false
)]
trait Service {
    #[zbus(property, name = "MainPID")]
    fn main_pid(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn restart(&self) -> zbus::Result<String>;
    #[zbus(property, name = "NRestarts")]
    fn n_restarts(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn result(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn exec_main_status(&self) -> zbus::Result<i32>;
    #[zbus(property)]
    fn exec_main_code(&self) -> zbus::Result<i32>;
    #[zbus(property)]
    fn standard_output(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn standard_error(&self) -> zbus::Result<String>;
    #[zbus(property, name = "LogRateLimitIntervalUSec")]
    fn log_rate_limit_interval_usec(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn log_rate_limit_burst(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn log_level_max(&self) -> zbus::Result<i32>;
    #[zbus(property)]
    fn log_filter_patterns(&self) -> zbus::Result<Vec<(bool, String)>>;
    #[zbus(property)]
    fn control_group(&self) -> zbus::Result<String>;
}

/// A connection to a service manager.
pub struct Systemd {
    conn: Connection,
    bus: Bus,
}

impl Systemd {
    /// Connect to the system bus, or for [`Bus::User`] to the session bus
    /// (`DBUS_SESSION_BUS_ADDRESS`, else `$XDG_RUNTIME_DIR/bus`).
    pub fn connect(bus: Bus) -> Result<Systemd, UnitError> {
        let conn = zbus::block_on(async {
            match bus {
                Bus::System => Connection::system().await,
                Bus::User => Connection::session().await,
            }
        })
        .map_err(|e| connect_error(bus, &e))?;
        Ok(Systemd { conn, bus })
    }

    /// Which bus this is connected to.
    pub fn bus(&self) -> Bus {
        self.bus
    }

    /// Resolve `name` (normalised first, see [`normalize`]) and read the service's state.
    pub fn unit(&self, name: &str) -> Result<UnitInfo, UnitError> {
        let name = normalize(name)?;
        zbus::block_on(self.read(&name))
    }

    async fn read(&self, name: &str) -> Result<UnitInfo, UnitError> {
        let err = |e: zbus::Error| self.call_error(name, e);
        let manager = ManagerProxy::builder(&self.conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(err)?;
        // GetUnit finds loaded units (and their aliases) without side effects; LoadUnit loads
        // the rest: an instance of a template, an alias not loaded yet, or a stub for a name
        // with no unit file ("not-found").
        let path = match manager.get_unit(name).await {
            Ok(p) => p,
            Err(e) if dbus_error(&e).is_some_and(|(n, _)| n.ends_with(".NoSuchUnit")) => {
                manager.load_unit(name).await.map_err(err)?
            }
            Err(e) => return Err(err(e)),
        };
        let unit = UnitProxy::builder(&self.conn)
            .path(path.clone())
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(err)?;
        let load_state = unit.load_state().await.map_err(err)?;
        if load_state == "not-found" {
            return Err(UnitError::NoSuchUnit {
                name: name.to_string(),
            });
        }
        let id = unit.id().await.map_err(err)?;
        let kind = id.rsplit_once('.').map(|(_, k)| k).unwrap_or("");
        if kind != "service" {
            return Err(UnitError::NotAService {
                name: if id == name {
                    id.clone()
                } else {
                    format!("{name} ({id})")
                },
                kind: kind.to_string(),
            });
        }
        if !matches!(load_state.as_str(), "loaded" | "masked") {
            // "error", "bad-setting": systemd could not load it; say why.
            let why = unit
                .load_error()
                .await
                .ok()
                .map(|(_, msg)| msg)
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| load_state.clone());
            return Err(UnitError::Other(format!("{id} could not be loaded: {why}")));
        }
        let service = ServiceProxy::builder(&self.conn)
            .path(path)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(err)?;
        let invocation_id = optional(unit.invocation_id().await)
            .map_err(err)?
            .filter(|b| !b.is_empty() && b.iter().any(|&x| x != 0))
            .map(|b| b.iter().map(|x| format!("{x:02x}")).collect());
        Ok(UnitInfo {
            names: unit.names().await.map_err(err)?,
            description: unit.description().await.map_err(err)?,
            active_state: unit.active_state().await.map_err(err)?,
            sub_state: unit.sub_state().await.map_err(err)?,
            fragment_path: unit.fragment_path().await.map_err(err)?,
            invocation_id,
            main_pid: service.main_pid().await.map_err(err)?,
            restart: service.restart().await.map_err(err)?,
            n_restarts: optional(service.n_restarts().await).map_err(err)?,
            result: service.result().await.map_err(err)?,
            exec_main_code: service.exec_main_code().await.map_err(err)?,
            exec_main_status: service.exec_main_status().await.map_err(err)?,
            standard_output: optional(service.standard_output().await).map_err(err)?,
            standard_error: optional(service.standard_error().await).map_err(err)?,
            log_rate_limit_interval_usec: optional(service.log_rate_limit_interval_usec().await)
                .map_err(err)?
                .unwrap_or(0),
            log_rate_limit_burst: optional(service.log_rate_limit_burst().await)
                .map_err(err)?
                .unwrap_or(0),
            log_level_max: optional(service.log_level_max().await)
                .map_err(err)?
                .unwrap_or(-1),
            log_filter_patterns: optional(service.log_filter_patterns().await)
                .map_err(err)?
                .unwrap_or_default(),
            control_group: service.control_group().await.map_err(err)?,
            id,
            load_state,
        })
    }

    fn call_error(&self, name: &str, e: zbus::Error) -> UnitError {
        let bus = self.bus;
        match dbus_error(&e) {
            Some((n, _)) if n.ends_with(".NoSuchUnit") => UnitError::NoSuchUnit {
                name: name.to_string(),
            },
            Some((n, msg))
                if n == "org.freedesktop.DBus.Error.AccessDenied"
                    || n == "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"
                    || n.ends_with(".AccessDenied") =>
            {
                UnitError::AccessDenied {
                    name: name.to_string(),
                    detail: if msg.is_empty() { n } else { msg },
                }
            }
            Some((n, msg))
                if n == "org.freedesktop.DBus.Error.ServiceUnknown"
                    || n == "org.freedesktop.DBus.Error.NameHasNoOwner"
                    || n == "org.freedesktop.DBus.Error.NoReply"
                    || n == "org.freedesktop.DBus.Error.Disconnected" =>
            {
                UnitError::BusUnreachable {
                    bus: bus.to_string(),
                    detail: format!("no service manager answers there ({n}: {msg})"),
                }
            }
            Some((n, msg)) if n.ends_with(".InvalidArgs") || n.ends_with(".UnitMasked") => {
                UnitError::Other(format!("{name}: {msg}"))
            }
            Some((n, msg)) => UnitError::Other(format!("{name}: {n}: {msg}")),
            None => match &e {
                zbus::Error::InputOutput(io) | zbus::Error::Connection(io, _)
                    if io.kind() == std::io::ErrorKind::PermissionDenied =>
                {
                    UnitError::AccessDenied {
                        name: name.to_string(),
                        detail: format!("the {bus} bus: {io}"),
                    }
                }
                zbus::Error::InputOutput(_) | zbus::Error::Connection(..) => {
                    UnitError::BusUnreachable {
                        bus: bus.to_string(),
                        detail: e.to_string(),
                    }
                }
                _ => UnitError::Other(format!("{name}: {e}")),
            },
        }
    }
}

fn connect_error(bus: Bus, e: &zbus::Error) -> UnitError {
    let io_kind = match e {
        zbus::Error::InputOutput(io) | zbus::Error::Connection(io, _) => Some(io.kind()),
        _ => None,
    };
    let what = match bus {
        Bus::System => "the system bus".to_string(),
        Bus::User => "the user's session bus".to_string(),
    };
    if io_kind == Some(std::io::ErrorKind::PermissionDenied) {
        return UnitError::AccessDenied {
            name: what,
            detail: e.to_string(),
        };
    }
    let mut detail = e.to_string();
    if bus == Bus::User
        && std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none()
        && std::env::var_os("XDG_RUNTIME_DIR").is_none()
    {
        detail.push_str(" (neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set)");
    }
    UnitError::BusUnreachable {
        bus: bus.to_string(),
        detail,
    }
}

/// The D-Bus error name and message of a method error reply, if `e` is one.
fn dbus_error(e: &zbus::Error) -> Option<(String, String)> {
    match e {
        zbus::Error::MethodError(name, msg, _) => {
            Some((name.to_string(), msg.clone().unwrap_or_default()))
        }
        zbus::Error::FDO(f) => Some((
            f.name().to_string(),
            f.description().unwrap_or_default().to_string(),
        )),
        _ => None,
    }
}

/// A property this systemd may not have: its absence is None, other errors stay errors.
fn optional<T>(r: zbus::Result<T>) -> zbus::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e)
            if dbus_error(&e).is_some_and(|(n, _)| {
                n == "org.freedesktop.DBus.Error.UnknownProperty"
                    || n == "org.freedesktop.DBus.Error.InvalidArgs"
            }) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_like_systemctl() {
        assert_eq!(normalize("wedge1").unwrap(), "wedge1.service");
        assert_eq!(normalize("wedge1.service").unwrap(), "wedge1.service");
        assert_eq!(normalize("basic.target").unwrap(), "basic.target");
        assert_eq!(normalize("foo@bar").unwrap(), "foo@bar.service");
        assert_eq!(normalize("foo@bar.socket").unwrap(), "foo@bar.socket");
        assert_eq!(normalize("my.app").unwrap(), "my.app.service");
        assert_eq!(
            normalize("dbus-org.freedesktop.hostname1").unwrap(),
            "dbus-org.freedesktop.hostname1.service"
        );
        assert_eq!(
            normalize("systemd-fsck@dev-disk-by\\x2duuid-1").unwrap(),
            "systemd-fsck@dev-disk-by\\x2duuid-1.service"
        );
        for bad in [
            "",
            ".service",
            "foo@",
            "foo@.service",
            "@bar",
            "a@b@c",
            "has space",
            "/usr/bin/foo",
            "ünï",
        ] {
            assert!(
                matches!(normalize(bad), Err(UnitError::InvalidName { .. })),
                "{bad:?} -> {:?}",
                normalize(bad)
            );
        }
        assert!(normalize(&"x".repeat(250)).is_err());
    }

    #[test]
    fn errors_are_one_line_naming_the_unit() {
        let e = UnitError::NotAService {
            name: "basic.target".into(),
            kind: "target".into(),
        };
        assert_eq!(
            e.to_string(),
            "basic.target is not a service (it is a target unit)"
        );
        let e = UnitError::NoSuchUnit {
            name: "nope.service".into(),
        };
        assert_eq!(e.to_string(), "no such unit: nope.service");
    }

    #[test]
    fn running_main_pid() {
        let mut u = UnitInfo {
            id: "x.service".into(),
            names: vec![],
            description: String::new(),
            load_state: "loaded".into(),
            active_state: "inactive".into(),
            sub_state: "dead".into(),
            main_pid: 0,
            invocation_id: None,
            restart: "no".into(),
            n_restarts: Some(0),
            result: "success".into(),
            exec_main_code: 0,
            exec_main_status: 0,
            standard_output: Some("journal".into()),
            standard_error: Some("inherit".into()),
            log_rate_limit_interval_usec: 0,
            log_rate_limit_burst: 0,
            log_level_max: -1,
            log_filter_patterns: vec![],
            control_group: String::new(),
            fragment_path: String::new(),
        };
        assert!(matches!(
            u.running_main_pid(),
            Err(UnitError::NotRunning { .. })
        ));
        assert_eq!(u.effective_standard_error(), Some("journal"));
        u.active_state = "active".into();
        u.main_pid = 42;
        assert_eq!(u.running_main_pid(), Ok(42));
    }
}
