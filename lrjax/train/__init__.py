"""The experiment half of lrjax: models, data and training for comparing schedules."""
