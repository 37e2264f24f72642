//! When a learner may see the answer (capa's `showanswer`), submit, and reset.
//!
//! xbhost has no due dates, so the settings that depend on one read as if the problem were
//! never past due: `correct_or_past_due` is `answered`, `past_due` is never, and
//! `attempted`/`attempted_no_past_due` are the same. `after_attempts` (which needs
//! `attempts_before_showanswer_button`, not imported) reads as `attempted`. Staff see the
//! answer unless it is `never`, as in capa.

use crate::fields::{Fields, Rerandomize};
use crate::state::State;

/// Every attempt used (capa's `used_all_attempts`; `closed` without due dates).
pub fn closed(fields: &Fields, state: &State) -> bool {
    fields.max_attempts.is_some_and(|max| state.attempts >= max)
}

pub fn answer_available(fields: &Fields, state: &State, staff: bool) -> bool {
    let attempted = state.attempts > 0;
    let correct = state.is_correct(fields);
    match fields.showanswer() {
        "never" => false,
        _ if staff => true,
        "always" => true,
        "attempted" | "attempted_no_past_due" | "after_attempts" => attempted,
        "answered" | "correct_or_past_due" => correct,
        "closed" | "after_all_attempts" => closed(fields, state),
        "finished" | "after_all_attempts_or_correct" => closed(fields, state) || correct,
        // "past_due" and anything unknown.
        _ => false,
    }
}

/// capa's `should_show_reset_button`, which this host also enforces in the `reset` handler.
pub fn can_reset(fields: &Fields, state: &State) -> Result<(), String> {
    if closed(fields, state) {
        return Err("You cannot reset a problem that is closed (no attempts left).".into());
    }
    if !state.done {
        return Err("You must submit an answer before you can reset the problem.".into());
    }
    let randomized = matches!(
        fields.rerandomize(),
        Rerandomize::Always | Rerandomize::OnReset
    );
    if randomized || (fields.show_reset_button && !state.is_correct(fields)) {
        Ok(())
    } else if state.is_correct(fields) {
        Err("The problem is answered correctly; there is nothing to reset.".into())
    } else {
        Err(
            "This problem has no reset (show_reset_button is off and it is not rerandomized)."
                .into(),
        )
    }
}

/// Why a submission is refused now, if it is.
pub fn cannot_submit(fields: &Fields, state: &State) -> Option<String> {
    if let Some(max) = fields.max_attempts
        && state.attempts >= max
    {
        return Some(format!("no attempts left (of {max})"));
    }
    if state.done && fields.rerandomize() == Rerandomize::Always {
        return Some("Problem must be reset before it can be submitted again.".into());
    }
    None
}
