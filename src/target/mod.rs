//! The process to rescue: what it is ([`process`]) and whether it is a Go program ([`golang`]).
//!
//! These modules only read (`/proc/PID/*` and the executable); nothing here signals or stops
//! the target.

pub mod golang;
pub mod process;
pub mod unit;

pub use golang::{GoBuildInfo, read_build_info};
pub use process::{InspectError, ProcState, ProcessInfo, SigquitState};

impl ProcessInfo {
    /// The Go build info of this process's executable (read through `/proc/PID/exe`, so it works
    /// when the file was deleted or replaced). `Ok(None)` when it is not a Go program.
    pub fn go_build_info(&self) -> Result<Option<GoBuildInfo>, InspectError> {
        if self.exe.is_none() {
            return Ok(None);
        }
        let link = self.exe_link();
        read_build_info(&link).map_err(|e| InspectError::from_io(self.pid, link, e))
    }
}
