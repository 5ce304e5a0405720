-- fct_feature_stats: train-split mean and population standard deviation of every count /
-- numeric state feature, computed on the float32 values the state vector stores. One row;
-- the build turns it into the feature_spec rows (index / onehot features get mean 0, std 1,
-- and a std of 0 is stored as 1).
-- Parameters: none
-- Columns: n_train, then mean_<feature> and std_<feature> for each scalar feature
select
    count(*) as n_train,
    avg(cast(f_step as float)) as mean_step,
    stddev_pop(cast(f_step as float)) as std_step,
    avg(cast(f_n_view as float)) as mean_n_view,
    stddev_pop(cast(f_n_view as float)) as std_n_view,
    avg(cast(f_n_click as float)) as mean_n_click,
    stddev_pop(cast(f_n_click as float)) as std_n_click,
    avg(cast(f_n_add_to_cart as float)) as mean_n_add_to_cart,
    stddev_pop(cast(f_n_add_to_cart as float)) as std_n_add_to_cart,
    avg(cast(f_n_purchase as float)) as mean_n_purchase,
    stddev_pop(cast(f_n_purchase as float)) as std_n_purchase,
    avg(cast(f_secs_since_session_start as float)) as mean_secs_since_session_start,
    stddev_pop(cast(f_secs_since_session_start as float)) as std_secs_since_session_start,
    avg(cast(f_secs_since_prev_event as float)) as mean_secs_since_prev_event,
    stddev_pop(cast(f_secs_since_prev_event as float)) as std_secs_since_prev_event,
    avg(cast(f_hour_of_day as float)) as mean_hour_of_day,
    stddev_pop(cast(f_hour_of_day as float)) as std_hour_of_day,
    avg(cast(f_day_of_week as float)) as mean_day_of_week,
    stddev_pop(cast(f_day_of_week as float)) as std_day_of_week,
    avg(cast(f_position as float)) as mean_position,
    stddev_pop(cast(f_position as float)) as std_position,
    avg(cast(f_hist_sessions as float)) as mean_hist_sessions,
    stddev_pop(cast(f_hist_sessions as float)) as std_hist_sessions,
    avg(cast(f_hist_purchases as float)) as mean_hist_purchases,
    stddev_pop(cast(f_hist_purchases as float)) as std_hist_purchases,
    avg(cast(f_hist_spend as float)) as mean_hist_spend,
    stddev_pop(cast(f_hist_spend as float)) as std_hist_spend
from int_features
where split = 'train'
