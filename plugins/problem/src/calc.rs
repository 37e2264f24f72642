//! Evaluating numerical and formula answers with the `exmex` crate, given the functions
//! and constants of capa's `calc` as far as exmex allows.
//!
//! - Operators `+ - * / ^` and parentheses. exmex binds a unary minus tighter than `^`
//!   (`-2^2` is 4; capa's is -4): authors should write `-(x^2)`.
//! - Functions: `sin cos tan sec csc cot arcsin arccos arctan arcsec arccsc arccot sinh cosh
//!   tanh sech csch coth arcsinh arccosh arctanh arcsech arccsch arccoth sqrt exp ln log10
//!   log2 abs fact factorial` (and exmex's own: `floor ceil round min max atan2`...).
//! - Constants, which a sampled variable of the same name overrides (as in capa): `pi e k c
//!   T q`. Not supported: complex numbers (`i`, `j`), SI suffixes (`5k`), `||`, postfix `!`.
//!
//! Both the expression and its evaluation are bounded: at most [`MAX_EXPRESSION_CHARS`]
//! characters, [`MAX_NESTING`] levels of parentheses, and a factorial stops at 170
//! (past which a double is infinite).

use std::collections::BTreeMap;

use exmex::prelude::*;
use exmex::{FloatOpsFactory, MakeOperators, MatchLiteral, Operator, literal_matcher_from_pattern};

/// Longest expression evaluated (a learner's answer or an author's).
pub const MAX_EXPRESSION_CHARS: usize = 500;
/// Deepest nesting of parentheses.
pub const MAX_NESTING: usize = 32;

// Numbers as capa reads them, with an exponent (`1.5e-3`), which exmex's default lacks.
literal_matcher_from_pattern!(
    NumberWithExponent,
    r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
);

/// A function of one number.
type Unary = fn(f64) -> f64;

/// The operators: exmex's float operators without its constants (constants are variables
/// here, so an author's variable `E` is not Euler's number) plus capa's functions.
#[derive(Clone, Debug)]
struct CapaOps;

fn fact(x: f64) -> f64 {
    if x < 0.0 || x.fract() != 0.0 {
        return f64::NAN;
    }
    if x > 170.0 {
        return f64::INFINITY;
    }
    (1..=x as u32).fold(1.0, |acc, n| acc * f64::from(n))
}

impl MakeOperators<f64> for CapaOps {
    fn make<'a>() -> Vec<Operator<'a, f64>> {
        let mut ops: Vec<Operator<'a, f64>> = FloatOpsFactory::<f64>::make()
            .into_iter()
            .filter(|op| op.constant().is_none())
            .collect();
        let extra: [(&'static str, Unary); 20] = [
            ("sec", |a| 1.0 / a.cos()),
            ("csc", |a| 1.0 / a.sin()),
            ("cot", |a| 1.0 / a.tan()),
            ("arcsin", f64::asin),
            ("arccos", f64::acos),
            ("arctan", f64::atan),
            ("arcsec", |a| (1.0 / a).acos()),
            ("arccsc", |a| (1.0 / a).asin()),
            ("arccot", |a| (1.0 / a).atan()),
            ("sech", |a| 1.0 / a.cosh()),
            ("csch", |a| 1.0 / a.sinh()),
            ("coth", |a| 1.0 / a.tanh()),
            ("arcsinh", f64::asinh),
            ("arccosh", f64::acosh),
            ("arctanh", f64::atanh),
            ("arcsech", |a| (1.0 / a).acosh()),
            ("arccsch", |a| (1.0 / a).asinh()),
            ("arccoth", |a| (1.0 / a).atanh()),
            ("fact", fact),
            ("factorial", fact),
        ];
        ops.extend(
            extra
                .into_iter()
                .map(|(name, f)| Operator::make_unary(name, f)),
        );
        ops
    }
}

/// capa's default variables.
const CONSTANTS: &[(&str, f64)] = &[
    ("pi", std::f64::consts::PI),
    ("e", std::f64::consts::E),
    ("k", 1.380_648_8e-23),
    ("c", 2.998e8),
    ("T", 298.15),
    ("q", 1.602_176_565e-19),
];

/// Evaluates `text` with `vars` (and the constants). `case_sensitive: false` (capa's
/// default for formulas) folds variable names and the expression to lower case.
pub fn evaluate(
    text: &str,
    vars: &BTreeMap<String, f64>,
    case_sensitive: bool,
) -> Result<f64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the answer is empty".into());
    }
    if text.chars().count() > MAX_EXPRESSION_CHARS {
        return Err(format!(
            "the expression is longer than {MAX_EXPRESSION_CHARS} characters"
        ));
    }
    let mut depth = 0usize;
    for ch in text.chars() {
        match ch {
            '(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!(
                        "the expression nests parentheses more than {MAX_NESTING} deep"
                    ));
                }
            }
            ')' => depth = depth.saturating_sub(1),
            // exmex reads `{...}` as a variable with any name; capa has no such thing.
            '{' | '}' | '[' | ']' | '\\' => {
                return Err(format!("'{ch}' is not allowed in an expression"));
            }
            _ => {}
        }
    }
    let folded;
    let text = if case_sensitive {
        text
    } else {
        folded = text.to_lowercase();
        &folded
    };
    let expr = FlatEx::<f64, CapaOps, NumberWithExponent>::parse(text)
        .map_err(|e| format!("could not parse {text:?} as a formula: {e}"))?;
    let mut values = Vec::with_capacity(expr.var_names().len());
    for name in expr.var_names() {
        let given = vars.iter().find(|(k, _)| {
            if case_sensitive {
                *k == name
            } else {
                k.to_lowercase() == *name
            }
        });
        let value = match given {
            Some((_, v)) => *v,
            None => match CONSTANTS
                .iter()
                .find(|(c, _)| *c == name || (!case_sensitive && c.to_lowercase() == *name))
            {
                Some((_, v)) => *v,
                None if name == "i" || name == "j" => {
                    return Err("complex numbers are not supported".into());
                }
                None => return Err(format!("unknown variable '{name}'")),
            },
        };
        values.push(value);
    }
    expr.eval(&values)
        .map_err(|e| format!("could not evaluate {text:?}: {e}"))
}

/// capa's `compare_with_tolerance`: `tolerance` is absolute (`5`) or a percent of the
/// author's value (`5%`); capa's default `0.001%` is relative to the larger of the two.
pub fn within_tolerance(student: f64, instructor: f64, tolerance: &str) -> Result<bool, String> {
    let tolerance = tolerance.trim();
    let relative = tolerance == DEFAULT_TOLERANCE;
    let mut tol = if let Some(percent) = tolerance.strip_suffix('%') {
        let t = evaluate(percent, &BTreeMap::new(), true)? * 0.01;
        if relative { t } else { t * instructor.abs() }
    } else {
        evaluate(tolerance, &BTreeMap::new(), true)?
    };
    if relative {
        tol *= student.abs().max(instructor.abs());
    }
    if student.is_infinite() || instructor.is_infinite() {
        return Ok(student == instructor);
    }
    if student.is_nan() || instructor.is_nan() {
        return Ok(false);
    }
    // A hair over the tolerance still counts (capa compares decimals of the printed
    // floats, so 605 is within 5 of 600 exactly).
    Ok((student - instructor).abs() <= tol + tol.abs() * 1e-12 + f64::EPSILON * instructor.abs())
}

/// capa's default tolerance.
pub const DEFAULT_TOLERANCE: &str = "0.001%";

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(s: &str) -> Result<f64, String> {
        evaluate(s, &BTreeMap::new(), true)
    }

    #[test]
    fn evaluates_capa_functions_and_constants() {
        assert_eq!(eval("4+5/2^2").unwrap(), 5.25);
        assert!((eval("sin(pi/2)").unwrap() - 1.0).abs() < 1e-12);
        assert!(
            (eval("sec(0) + arctan(1)*4").unwrap() - (1.0 + std::f64::consts::PI)).abs() < 1e-12
        );
        assert_eq!(eval("fact(5)").unwrap(), 120.0);
        assert!(eval("factorial(-1)").unwrap().is_nan());
        assert!(eval("fact(1e9)").unwrap().is_infinite());
        assert_eq!(eval("1.5e-3*2E3").unwrap(), 3.0);
        assert!((eval("e").unwrap() - std::f64::consts::E).abs() < 1e-12);
    }

    #[test]
    fn variables_override_constants_and_case_folds_when_asked() {
        let vars = BTreeMap::from([("E".to_string(), 2.0)]);
        assert_eq!(evaluate("E*3", &vars, true).unwrap(), 6.0);
        assert_eq!(evaluate("e*3", &vars, false).unwrap(), 6.0);
        assert!(
            evaluate("E*x", &vars, true)
                .unwrap_err()
                .contains("unknown variable 'x'")
        );
    }

    #[test]
    fn bad_and_oversized_expressions_are_refused() {
        assert!(eval("2*").is_err());
        assert!(eval("").is_err());
        assert!(eval("3+4i").is_err() || eval("3+4*i").is_err());
        assert!(eval("{x}").unwrap_err().contains("not allowed"));
        let deep = format!("{}1{}", "(".repeat(40), ")".repeat(40));
        assert!(eval(&deep).unwrap_err().contains("nests"));
        let long = "1+".repeat(300) + "1";
        assert!(eval(&long).unwrap_err().contains("longer than"));
    }

    #[test]
    fn tolerance_absolute_percent_and_default() {
        assert!(within_tolerance(605.0, 600.0, "5").unwrap());
        assert!(!within_tolerance(605.1, 600.0, "5").unwrap());
        assert!(within_tolerance(594.0, 600.0, "1%").unwrap());
        assert!(!within_tolerance(593.9, 600.0, "1%").unwrap());
        assert!(within_tolerance(0.1 + 0.2, 0.3, DEFAULT_TOLERANCE).unwrap());
        assert!(!within_tolerance(0.301, 0.3, DEFAULT_TOLERANCE).unwrap());
        assert!(!within_tolerance(f64::NAN, 0.3, "1").unwrap());
    }
}
