//! The COSEM object model (IEC 62056-6-2, the Blue Book) on top of the protocol stack.
pub mod events;
pub mod obis;
pub mod scaled;
pub mod units;

pub use obis::Obis;
pub use scaled::ScaledValue;
pub use units::Unit;
