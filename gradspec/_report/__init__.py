def check_report_paths(paths): pass
def write_reports(paths, run): pass
