//! Clicks on an image (`imageinput`): the answer `[x,y]` is correct inside one of the
//! rectangles `(x1,y1)-(x2,y2)` (edges included, several separated by `;`) or strictly
//! inside the convex hull of one of the `regions` polygons, as capa grades it.

use serde_json::{Value, json};

use super::Mark;
use crate::fields::Image;

/// Largest coordinate accepted (pixels).
const MAX_COORDINATE: i64 = 100_000;
/// Most points in the regions of one image.
const MAX_REGION_POINTS: usize = 1000;

fn numbers(text: &str) -> Option<Vec<i64>> {
    // Coordinates are never negative: a `-` separates the corners of a rectangle.
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect()
}

/// A click as `[x,y]`, from `"[x,y]"`, `"x,y"`, `"(x, y)"` or a JSON pair.
pub fn normalize(raw: &Value, id: &str) -> Result<Option<Value>, String> {
    let pair = match raw {
        Value::Null => return Ok(None),
        Value::Array(a) if a.len() == 2 => a.iter().map(Value::as_i64).collect::<Option<Vec<_>>>(),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) if s.len() <= 64 && !s.contains('-') => numbers(s),
        _ => None,
    };
    match pair.as_deref() {
        Some([x, y]) if (0..=MAX_COORDINATE).contains(x) && (0..=MAX_COORDINATE).contains(y) => {
            Ok(Some(json!(format!("[{x},{y}]"))))
        }
        _ => Err(format!(
            "{id} expects a point [x,y] on the image, not {raw}"
        )),
    }
}

fn point(given: &str) -> Option<(i64, i64)> {
    match numbers(given)?.as_slice() {
        [x, y] => Some((*x, *y)),
        _ => None,
    }
}

fn in_rectangles(rectangles: &str, (x, y): (i64, i64)) -> Result<bool, String> {
    for rect in rectangles.split(';').filter(|r| !r.trim().is_empty()) {
        let Some([x1, y1, x2, y2]) = numbers(rect)
            .as_deref()
            .and_then(|n| <[i64; 4]>::try_from(n).ok())
        else {
            return Err(format!(
                "the problem's rectangle {rect:?} is not (x1,y1)-(x2,y2)"
            ));
        };
        if x1 <= x && x <= x2 && y1 <= y && y <= y2 {
            return Ok(true);
        }
    }
    Ok(false)
}

fn cross(o: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
}

/// The convex hull (Andrew's monotone chain), counter-clockwise.
fn hull(mut pts: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    pts.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    pts.dedup();
    if pts.len() < 3 {
        return pts;
    }
    let mut lower: Vec<(f64, f64)> = Vec::new();
    for &p in &pts {
        while lower.len() >= 2 && cross(lower[lower.len() - 2], lower[lower.len() - 1], p) <= 0.0 {
            lower.pop();
        }
        lower.push(p);
    }
    let mut upper: Vec<(f64, f64)> = Vec::new();
    for &p in pts.iter().rev() {
        while upper.len() >= 2 && cross(upper[upper.len() - 2], upper[upper.len() - 1], p) <= 0.0 {
            upper.pop();
        }
        upper.push(p);
    }
    lower.pop();
    upper.pop();
    lower.extend(upper);
    lower
}

/// Strictly inside the hull of `region` (a hull of fewer than 3 points holds nothing).
fn in_region(region: &[(f64, f64)], p: (f64, f64)) -> bool {
    let h = hull(region.to_vec());
    h.len() >= 3 && (0..h.len()).all(|i| cross(h[i], h[(i + 1) % h.len()], p) > 0.0)
}

fn regions_of(text: &str) -> Result<Vec<Vec<(f64, f64)>>, String> {
    let bad = || format!("the problem's regions {text:?} are not a list of [x,y] polygons");
    let v: Value = serde_json::from_str(text).map_err(|_| bad())?;
    let pair = |p: &Value| -> Option<(f64, f64)> {
        let a = p.as_array()?;
        Some((a.first()?.as_f64()?, a.get(1)?.as_f64()?))
    };
    let outer = v.as_array().ok_or_else(bad)?;
    // One region `[[x,y],...]` or several `[[[x,y],...],...]`.
    let single = outer
        .first()
        .and_then(|f| f.as_array())
        .and_then(|f| f.first())
        .is_some_and(Value::is_number);
    let polygons: Vec<&Value> = if single {
        vec![&v]
    } else {
        outer.iter().collect()
    };
    let mut out = Vec::new();
    let mut count = 0;
    for poly in polygons {
        let pts: Vec<(f64, f64)> = poly
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .map(pair)
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        count += pts.len();
        if count > MAX_REGION_POINTS {
            return Err(format!(
                "the problem's regions have more than {MAX_REGION_POINTS} points"
            ));
        }
        out.push(pts);
    }
    Ok(out)
}

pub fn mark(image: &Image, given: Option<&str>) -> Result<Mark, String> {
    let Some(p) = given.and_then(point) else {
        return Ok(Mark::of(false));
    };
    if let Some(rects) = &image.rectangle
        && in_rectangles(rects, p)?
    {
        return Ok(Mark::of(true));
    }
    if let Some(regions) = &image.regions {
        let pf = (p.0 as f64, p.1 as f64);
        if regions_of(regions)?.iter().any(|r| in_region(r, pf)) {
            return Ok(Mark::of(true));
        }
    }
    Ok(Mark::of(false))
}
