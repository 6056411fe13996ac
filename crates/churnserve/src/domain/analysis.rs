//! Analysis: explanations and importance, evaluations and comparisons on labelled data,
//! and shadows (a challenger scored beside the serving version on live traffic).

pub mod evaluating;
pub mod explaining;
pub mod shadows;
