//! Allocation logic (pure): which devices to prefer for a request, and what an
//! Allocate response carries.

pub mod preferred;
