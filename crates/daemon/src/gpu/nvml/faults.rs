//! How an NVML error counts: for one GPU (lost, needs a reset, failed) or
//! for the whole node (NVML itself does not work), and what the recovery
//! action field's value means. Pure, so the rules are table-tested.

use nvml_wrapper::error::NvmlError;

use super::raw::FieldValue;
use crate::gpu::{FaultKind, RecoveryAction};

/// `NVML_FI_DEV_GET_GPU_RECOVERY_ACTION` (R565 and newer drivers).
pub const FIELD_RECOVERY_ACTION: u32 = 230;

/// A field read: the call's result, holding the field's own result.
pub type FieldRead = Result<Result<FieldValue, NvmlError>, NvmlError>;

/// Where an NVML error on a call about one GPU belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// NVML itself does not answer (not initialised, driver gone, a library
    /// without the call): every GPU is affected.
    Node(String),
    /// This GPU only.
    Gpu(FaultKind),
}

/// Classifies `error` from the call described by `what` (e.g.
/// `"cannot read its UUID (nvmlDeviceGetUUID)"`).
pub fn classify(error: &NvmlError, what: &str) -> Failure {
    match error {
        NvmlError::GpuLost => Failure::Gpu(FaultKind::Lost),
        NvmlError::ResetRequired => {
            Failure::Gpu(FaultKind::NeedsRecovery(RecoveryAction::GpuReset))
        }
        NvmlError::Uninitialized
        | NvmlError::DriverNotLoaded
        | NvmlError::LibRmVersionMismatch
        | NvmlError::LibraryNotFound
        | NvmlError::LibloadingError(_)
        | NvmlError::FailedToLoadSymbol(_) => Failure::Node(format!("{what}: {error}")),
        _ => Failure::Gpu(FaultKind::Failed(format!("{what}: {error}"))),
    }
}

/// True when the question cannot be asked of this GPU or driver: the answer
/// is unknown, not an error.
pub fn unsupported(error: &NvmlError) -> bool {
    matches!(
        error,
        NvmlError::NotSupported | NvmlError::FunctionNotFound | NvmlError::FailedToLoadSymbol(_)
    )
}

/// The recovery action a field-230 read says. `Ok(None)` when the driver
/// cannot answer: the call or the field is unsupported (drivers before R565
/// fail the field with its own return code, whichever), or the value is not
/// an integer. A value beyond `u32` is kept as an unknown action.
pub fn recovery_action(read: FieldRead) -> Result<Option<RecoveryAction>, NvmlError> {
    let field = match read {
        Ok(field) => field,
        Err(e) if unsupported(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let value = match field {
        Ok(value) => value,
        // The GPU's state, not the field's support, speaks here.
        Err(e @ (NvmlError::GpuLost | NvmlError::ResetRequired)) => return Err(e),
        Err(_) => return Ok(None),
    };
    let number = match value {
        FieldValue::Unsigned(n) => n,
        FieldValue::Signed(n) => match u64::try_from(n) {
            Ok(n) => n,
            Err(_) => return Ok(None),
        },
        FieldValue::Double(_) | FieldValue::Unknown(_) => return Ok(None),
    };
    Ok(Some(RecoveryAction::from_nvml(
        u32::try_from(number).unwrap_or(u32::MAX),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_per_gpu_unless_nvml_itself_fails() {
        let failed = || Failure::Gpu(FaultKind::Failed(String::new()));
        let cases = [
            (NvmlError::GpuLost, Failure::Gpu(FaultKind::Lost)),
            (
                NvmlError::ResetRequired,
                Failure::Gpu(FaultKind::NeedsRecovery(RecoveryAction::GpuReset)),
            ),
            (NvmlError::Unknown, failed()),
            (NvmlError::NotFound, failed()),
            (NvmlError::InvalidArg, failed()),
            (
                NvmlError::Uninitialized,
                Failure::Node("reading X: ".into()),
            ),
            (
                NvmlError::DriverNotLoaded,
                Failure::Node("reading X: ".into()),
            ),
            (
                NvmlError::LibRmVersionMismatch,
                Failure::Node("reading X: ".into()),
            ),
            (
                NvmlError::FailedToLoadSymbol("nvmlX".into()),
                Failure::Node("reading X: ".into()),
            ),
        ];
        for (error, want) in cases {
            let got = classify(&error, "reading X");
            // The kind must match; a message is the call's description, then NVML's text.
            match (&got, &want) {
                (Failure::Node(g), Failure::Node(w)) => assert!(g.starts_with(w), "{g}"),
                (Failure::Gpu(FaultKind::Failed(g)), Failure::Gpu(FaultKind::Failed(_))) => {
                    assert!(g.starts_with("reading X: "), "{g}");
                    assert!(g.ends_with(&error.to_string()), "{g}");
                }
                _ => assert_eq!(got, want, "{error:?}"),
            }
        }
    }

    #[test]
    fn recovery_action_reads() {
        use FieldValue::*;
        use RecoveryAction as A;
        let cases: [(FieldRead, Result<Option<A>, ()>); 16] = [
            (Ok(Ok(Unsigned(0))), Ok(Some(A::None))),
            (Ok(Ok(Unsigned(1))), Ok(Some(A::GpuReset))),
            (Ok(Ok(Unsigned(2))), Ok(Some(A::NodeReboot))),
            (Ok(Ok(Unsigned(3))), Ok(Some(A::DrainP2P))),
            (Ok(Ok(Unsigned(4))), Ok(Some(A::DrainAndReset))),
            (Ok(Ok(Unsigned(7))), Ok(Some(A::Other(7)))),
            (Ok(Ok(Unsigned(1 << 40))), Ok(Some(A::Other(u32::MAX)))),
            (Ok(Ok(Signed(1))), Ok(Some(A::GpuReset))),
            (Ok(Ok(Signed(-1))), Ok(None)),
            (Ok(Ok(Double(1.0))), Ok(None)),
            (Ok(Ok(Unknown(9))), Ok(None)),
            // A driver before R565: the field fails, the call does not.
            (Ok(Err(NvmlError::NotSupported)), Ok(None)),
            (Ok(Err(NvmlError::InvalidArg)), Ok(None)),
            (Ok(Err(NvmlError::GpuLost)), Err(())),
            (Err(NvmlError::FailedToLoadSymbol("x".into())), Ok(None)),
            (Err(NvmlError::GpuLost), Err(())),
        ];
        for (read, want) in cases {
            let label = format!("{read:?}");
            assert_eq!(recovery_action(read).map_err(|_| ()), want, "{label}");
        }
    }
}
